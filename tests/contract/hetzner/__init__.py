"""The Hetzner emulator against Hetzner's OpenAPI document (data/)."""
