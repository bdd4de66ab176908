"""The `Fatctl-Signature` header: HMAC-SHA256 over `<timestamp>.<body>`, pure.

The scheme is Stripe's, so platforms know it: `t=<unix seconds>,v1=<hex>`, the timestamp signed
with the body, so a captured request replayed later than the receiver's window fails even
though its signature is genuine. Several `v1=` entries may appear (a receiver accepts any that
matches), which leaves room to sign with an old and a new secret during a rotation.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Fatctl-Signature"
SCHEME = "v1"
REPLAY_WINDOW_S = 300  # what docs/operations.md tells receivers to accept, either way


class SignatureError(ValueError):
    """The header is malformed, no signature matches, or the timestamp is outside the window."""


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    return sign_all([secret], timestamp, body)


def sign_all(secrets: list[bytes], timestamp: int, body: bytes) -> str:
    """One `v1=` per secret, in order (during a rotation's overlap: the new one, then the
    replaced one); a receiver accepts the header when any of them matches its secret."""
    entries = ",".join(f"{SCHEME}={signature(s, timestamp, body)}" for s in secrets)
    return f"t={timestamp},{entries}"


def parse(header: str) -> tuple[int, list[str]]:
    """(timestamp, the v1 signatures) of a header value; unknown schemes are ignored."""
    timestamp: int | None = None
    found: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME:
            found.append(value)
    if timestamp is None or not found:
        raise SignatureError("signature header lacks t= or v1=")
    return timestamp, found


def verify(
    secret: bytes, header: str, body: bytes, now: float, window_s: int = REPLAY_WINDOW_S
) -> int:
    """Check `header` for `body` received at `now` (unix seconds); returns its timestamp.

    Compares in constant time, and refuses a timestamp more than `window_s` from `now` in
    either direction (a replay, or a clock far off)."""
    timestamp, candidates = parse(header)
    if abs(now - timestamp) > window_s:
        raise SignatureError(f"timestamp is {int(now - timestamp)} s from now, outside the window")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no signature matches")
    return timestamp
