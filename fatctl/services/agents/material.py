"""Per-agent material generated before the box exists: SSH host keys and the gateway token.

Generating the host key here is what lets fatctl pin it from the first connection on: the box
gets the private half through cloud-init, the database keeps the public half (and the private
half, sealed, so a rebuild can present the same identity).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from fatctl.domain import HostKeyPair
from fatctl.sensitive import Sensitive


@dataclass(frozen=True)
class GeneratedHostKey:
    pair: HostKeyPair
    fingerprint: str
    private: Sensitive


def fingerprint_of(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def generate_host_key(comment: str) -> GeneratedHostKey:
    """A fresh ed25519 host key in OpenSSH formats."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    line = f"{public} {comment}"
    pair = HostKeyPair(key_type="ssh-ed25519", public_key=line, private_key_pem=private_pem)
    return GeneratedHostKey(
        pair=pair, fingerprint=fingerprint_of(line), private=Sensitive(private_pem)
    )
