"""age X25519 keys for state backups, made without an `age` binary on the operator's side.

A box encrypts its backups to the agent's public *recipient* (`age1...`) and never holds the
*identity* (`AGE-SECRET-KEY-1...`), which fatctl keeps sealed and hands to the box only for a
restore or verify. Both are Bech32 (BIP-173, checksum constant 1, no 90-character limit) of 32
raw bytes, as age's specification (C2SP age.md, "The X25519 recipient type") writes them:

    "An X25519 identity is encoded as Bech32 with HRP AGE-SECRET-KEY-" (uppercase) and
    "An X25519 recipient is encoded as Bech32 with HRP age"; the recipient is
    X25519(identity, basepoint).

`tests/unit/test_backup_keys.py` checks the output against the real `age-keygen -y` and an
`age -e -r | age -d -i` round trip.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fatctl.errors import BadInput
from fatctl.sensitive import Sensitive

IDENTITY_HRP = "age-secret-key-"
RECIPIENT_HRP = "age"
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            check ^= gen if (top >> i) & 1 else 0
    return check


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: bytes | list[int], source: int, target: int, pad: bool) -> list[int] | None:
    """Bits regrouped from `source`-bit to `target`-bit words (BIP-173's convertbits)."""
    acc = bits = 0
    out = []
    for value in data:
        acc = (acc << source) | value
        bits += source
        while bits >= target:
            bits -= target
            out.append((acc >> bits) & ((1 << target) - 1))
    if pad and bits:
        out.append((acc << (target - bits)) & ((1 << target) - 1))
    elif not pad and (bits >= source or (acc << (target - bits)) & ((1 << target) - 1)):
        return None
    return out


def bech32_encode(hrp: str, payload: bytes) -> str:
    """`payload` as lowercase Bech32 under `hrp` (callers uppercase an identity)."""
    words = _regroup(payload, 8, 5, pad=True) or []
    checksum = _polymod([*_hrp_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    words += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words)


def bech32_decode(text: str, hrp: str) -> bytes | None:
    """The payload of Bech32 `text` under `hrp`, or None when it is not one (any case, not
    mixed; a wrong checksum, prefix or padding is None)."""
    if text.lower() != text and text.upper() != text:
        return None
    text = text.lower()
    prefix, sep, data = text.rpartition("1")
    if not sep or prefix != hrp or len(data) < 6 or any(c not in _CHARSET for c in data):
        return None
    words = [_CHARSET.index(c) for c in data]
    if _polymod([*_hrp_expand(hrp), *words]) != 1:
        return None
    payload = _regroup(words[:-6], 5, 8, pad=False)
    return None if payload is None else bytes(payload)


def _recipient_from_scalar(scalar: bytes) -> str:
    public = X25519PrivateKey.from_private_bytes(scalar).public_key()
    return bech32_encode(RECIPIENT_HRP, public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def generate() -> tuple[Sensitive, str]:
    """A fresh identity (sealed by the caller, never printed) and its public recipient."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    scalar = X25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    identity = bech32_encode(IDENTITY_HRP, scalar).upper()
    return Sensitive(identity), _recipient_from_scalar(scalar)


def recipient_of(identity: Sensitive) -> str:
    """The recipient an identity decrypts for (what `age-keygen -y` prints)."""
    scalar = bech32_decode(identity.reveal().strip(), IDENTITY_HRP)
    if scalar is None or len(scalar) != 32:
        raise BadInput("not an age X25519 identity (AGE-SECRET-KEY-1...)")  # value not echoed
    return _recipient_from_scalar(scalar)


def is_recipient(text: str) -> bool:
    """True for a well-formed lowercase age X25519 recipient (`age1` + 32 bytes)."""
    key = bech32_decode(text, RECIPIENT_HRP) if text == text.lower() else None
    return key is not None and len(key) == 32
