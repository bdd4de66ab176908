"""Database vs Hetzner vs Cloudflare vs the boxes: findings, and the safe repairs.

- `run.reconcile(...)`: gather the four views, diff them, optionally fix and look again.
- `views`: the plain data compared; `diff` / `diff_dns`: the pure diff; `fix`: the repairs.
"""
