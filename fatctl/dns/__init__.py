"""Cloudflare at the edge: agents' DNS records and R2 credentials.

The only package importing the cloudflare SDK.
"""
