"""The Cloudflare emulator's answers checked against Cloudflare's API documentation and the
cloudflare-python SDK's response models (what fatctl's calls rely on)."""
