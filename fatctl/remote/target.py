"""Where and how to reach one box: plain data, no SSH library types.

`Target` is what services and the CLI build (from the database's Agent and HostKey rows) and
what the runner consumes. Host keys are OpenSSH public key lines pinned before the box existed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Target:
    """One SSH destination with its pinned host keys."""

    name: str  # agent name: used in messages and as the output prefix
    host: str
    port: int = 22
    user: str = "fatops"
    host_keys: tuple[str, ...] = ()  # "ssh-ed25519 AAAA..." lines; at least one is required
    key_file: str | None = None
    use_agent: bool = False
    jump: Target | None = None
    connect_timeout: float = 10.0
    keepalive_s: int = 15

    @property
    def key(self) -> tuple[object, ...]:
        """Identity for connection reuse: same host, port, user and credentials."""
        jump = self.jump.key if self.jump else None
        return (self.host, self.port, self.user, self.key_file, self.use_agent, jump)

    def with_key_file(self, key_file: str) -> Target:
        return replace(self, key_file=key_file, use_agent=False)

    def label(self) -> str:
        return f"{self.name} ({self.host})" if self.name != self.host else self.host


@dataclass(frozen=True)
class PublicKey:
    """A parsed OpenSSH public key line: its type name and raw blob."""

    key_type: str
    blob: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def line(self) -> str:
        return f"{self.key_type} {base64.b64encode(self.blob).decode()}"


def parse_public_key(line: str) -> PublicKey:
    """Parse `type base64 [comment]`; raises ValueError on anything else."""
    parts = line.strip().split()
    if len(parts) < 2 or "\n" in line.strip():
        raise ValueError("not an OpenSSH public key line")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public key body is not base64") from None
    # The blob starts with its own type name; a mismatch means a corrupted or spliced line.
    name_len = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if name_len <= 0 or blob[4 : 4 + name_len].decode(errors="replace") != parts[0]:
        raise ValueError("public key type does not match its body")
    return PublicKey(parts[0], blob)


def fingerprint(line: str) -> str:
    return parse_public_key(line).fingerprint
