"""Envelope encryption with AES-256-GCM.

Each secret gets its own random data key (DEK); the value is encrypted with the DEK and the DEK
is wrapped with the master key. A record stores the master key's id, so the master key can be
rotated by re-wrapping DEKs (`fatctl secrets rotate-master`) without touching the values.
Both layers bind the record's name as associated data, so ciphertexts cannot be swapped
between records unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets as pysecrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fatctl.errors import ConfigError, SecretError
from fatctl.sensitive import Sensitive

NONCE_BYTES = 12
KEY_BYTES = 32


@dataclass(frozen=True)
class MasterKey:
    """A 256-bit key-encryption key and its public id (a digest prefix, safe to store)."""

    key_id: str
    material: bytes = field(repr=False)


def generate_master_key() -> str:
    """A fresh master key in the form FATCTL_MASTER_KEY expects."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def parse_master_key(value: Sensitive, setting: str = "FATCTL_MASTER_KEY") -> MasterKey:
    """Decode a base64 master key; the error names the setting, never the value."""
    try:
        material = base64.b64decode(value.reveal().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{setting} is not valid base64") from None
    if len(material) != KEY_BYTES:
        raise ConfigError(f"{setting} must decode to {KEY_BYTES} bytes, got {len(material)}")
    key_id = hashlib.sha256(b"fatctl-master-key-id|" + material).hexdigest()[:16]
    return MasterKey(key_id=key_id, material=material)


@dataclass(frozen=True)
class KeyRing:
    """The current master key plus older ones still accepted for decryption during rotation."""

    current: MasterKey
    previous: tuple[MasterKey, ...] = ()

    def find(self, key_id: str) -> MasterKey:
        for key in (self.current, *self.previous):
            if key.key_id == key_id:
                return key
        raise SecretError(
            f"no master key with id {key_id} is configured",
            hint="set FATCTL_MASTER_KEY or FATCTL_PREVIOUS_MASTER_KEYS to the key it was made with",
        )


def keyring_from(current: Sensitive | None, previous: Sensitive | None = None) -> KeyRing:
    if current is None or not current:
        raise ConfigError(
            "missing setting master_key: set FATCTL_MASTER_KEY or 'master_key' in fatctl.toml",
            hint="generate one with `fatctl secrets generate-master-key`",
        )
    olds: list[MasterKey] = []
    if previous:
        for part in previous.reveal().split(","):
            if part.strip():
                olds.append(parse_master_key(Sensitive(part), "FATCTL_PREVIOUS_MASTER_KEYS"))
    return KeyRing(current=parse_master_key(current), previous=tuple(olds))


@dataclass(frozen=True)
class Sealed:
    """What is stored: the master key id, the wrapped DEK and the value ciphertext."""

    key_id: str
    wrapped_key: bytes
    ciphertext: bytes


def _aead_encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = pysecrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _aead_decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)


def seal(value: Sensitive, ring: KeyRing, context: str) -> Sealed:
    """Encrypt `value` for the record identified by `context` (e.g. "agent:7/gateway-token")."""
    dek = AESGCM.generate_key(bit_length=256)
    aad = context.encode()
    return Sealed(
        key_id=ring.current.key_id,
        wrapped_key=_aead_encrypt(ring.current.material, dek, b"dek|" + aad),
        ciphertext=_aead_encrypt(dek, value.reveal().encode(), b"value|" + aad),
    )


def _unwrap(sealed: Sealed, ring: KeyRing, context: str) -> bytes:
    master = ring.find(sealed.key_id)
    try:
        return _aead_decrypt(master.material, sealed.wrapped_key, b"dek|" + context.encode())
    except InvalidTag:
        raise SecretError(
            f"cannot decrypt secret {context}: the master key does not match or data was altered"
        ) from None


def open_sealed(sealed: Sealed, ring: KeyRing, context: str) -> Sensitive:
    """Decrypt a stored secret; failures say which record, never what it holds."""
    dek = _unwrap(sealed, ring, context)
    try:
        raw = _aead_decrypt(dek, sealed.ciphertext, b"value|" + context.encode())
    except InvalidTag:
        raise SecretError(f"cannot decrypt secret {context}: ciphertext was altered") from None
    return Sensitive(raw.decode())


def rewrap(sealed: Sealed, ring: KeyRing, context: str) -> Sealed:
    """Re-wrap the DEK under the current master key; the value ciphertext is unchanged."""
    if sealed.key_id == ring.current.key_id:
        return sealed
    dek = _unwrap(sealed, ring, context)
    return Sealed(
        key_id=ring.current.key_id,
        wrapped_key=_aead_encrypt(ring.current.material, dek, b"dek|" + context.encode()),
        ciphertext=sealed.ciphertext,
    )


def random_token(nbytes: int = 32) -> Sensitive:
    """A URL-safe random token (gateway tokens and the like), born wrapped."""
    return Sensitive(pysecrets.token_urlsafe(nbytes))
