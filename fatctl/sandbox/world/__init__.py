"""The outside world the sandbox's boxes talk to, as local stand-ins on the host side of the
boxes' network: an OpenAI-compatible model endpoint and a Telegram Bot API endpoint.

Both record what they receive, so a test can prove a message round trip through the real
OpenClaw gateway on a real box: an update served to the bot, the model called with the agent's
key, the model's reply sent back to the chat. Keys and bot tokens are never written anywhere:
the records carry a fingerprint of each (`fingerprint`), which a test compares with the
fingerprint of the key it delivered.

`python -m fatctl.sandbox.world` runs both in one process (see `__main__`); the public side
listens where the boxes can reach it, the admin side (inject updates, read records) only on
loopback.
"""

from __future__ import annotations

import hashlib


def fingerprint(secret: str) -> str:
    """A short, one-way name for a key or token: records and logs carry this, never the value."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]
