"""Input validators with precise one-line messages.

Each validator returns the normalised value or raises `BadInput`; none of them may raise
anything else, whatever the input (property-tested with hypothesis).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import struct

from fatctl.errors import BadInput

RESERVED_NAMES = frozenset(
    {
        "www", "api", "mail", "admin", "start", "app", "dashboard", "status", "smtp", "imap",
        "pop", "ftp", "ns1", "ns2", "root", "billing", "support", "help", "docs", "blog",
        "static", "cdn", "auth", "login", "console", "fatctl", "localhost",
    }
)  # fmt: skip
SERVER_TYPES = frozenset({"cx23", "cx33", "cx43", "cx53", "cpx22", "cpx32", "cax11", "cax21"})
LOCATIONS = frozenset({"fsn1", "nbg1", "hel1", "ash", "hil", "sin"})
IMAGES = frozenset({"debian-12", "debian-13", "ubuntu-24.04"})

_NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_VERSION_RE = re.compile(r"^\d{1,4}\.\d{1,4}\.\d{1,6}(?:-[0-9A-Za-z.-]{1,32})?$")


def _printable(value: str, limit: int = 40) -> str:
    shown = value if len(value) <= limit else value[:limit] + "..."
    return repr(shown)


def executor_name(value: str) -> str:
    """A workflow executor's name: 1-64 printable characters without spaces."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", value or ""):
        raise BadInput(
            f"--executor-id wants 1-64 letters, digits or . _ : -, not {_printable(value)}"
        )
    return value


def agent_name(value: str) -> str:
    """A DNS label, 3-40 chars, lowercase letters/digits/hyphens, not reserved."""
    if not isinstance(value, str) or not value:
        raise BadInput("agent name is empty")
    if len(value) < 3 or len(value) > 40:
        raise BadInput(f"agent name {_printable(value)} must be 3 to 40 characters long")
    if value != value.lower():
        raise BadInput(f"agent name {_printable(value)} must be lowercase")
    if "--" in value:
        raise BadInput(f"agent name {_printable(value)} must not contain '--'")
    if not _NAME_RE.fullmatch(value):
        raise BadInput(
            f"agent name {_printable(value)} must start with a letter, use only a-z, 0-9 and "
            "'-', and not end with '-'"
        )
    if value in RESERVED_NAMES:
        raise BadInput(f"agent name {value!r} is reserved")
    return value


def email(value: str) -> str:
    """A plausible address (RFC 5321 lengths); the domain part is lowercased."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput("e-mail address is empty")
    value = value.strip()
    if len(value) > 254 or not _EMAIL_RE.fullmatch(value):
        raise BadInput(f"e-mail address {_printable(value)} is not valid")
    local, domain_part = value.rsplit("@", 1)
    if ".." in local or local.startswith(".") or local.endswith("."):
        raise BadInput(f"e-mail address {_printable(value)} is not valid")
    return f"{local}@{domain_part.lower()}"


def domain(value: str) -> str:
    """A DNS domain under which agents are served, e.g. agents.example.com."""
    value = (value or "").strip().lower().rstrip(".")
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_LABEL_RE.fullmatch(lb) for lb in labels):
        raise BadInput(f"domain {_printable(value)} is not a valid DNS name")
    if labels[-1].isdigit():
        raise BadInput(f"domain {_printable(value)} must not end in a numeric label")
    return value


def one_of(kind: str, value: str, allowed: frozenset[str]) -> str:
    if value not in allowed:
        raise BadInput(
            f"unknown {kind} {_printable(value)}: use one of {', '.join(sorted(allowed))}"
        )
    return value


def server_type(value: str) -> str:
    return one_of("server type", value, SERVER_TYPES)


def location(value: str) -> str:
    return one_of("location", value, LOCATIONS)


def image(value: str) -> str:
    return one_of("image", value, IMAGES)


def version(value: str) -> str:
    """A release version such as 2026.9.6 (OpenClaw) or 24.21.0 (Node)."""
    if not isinstance(value, str) or not _VERSION_RE.fullmatch(value):
        raise BadInput(f"version {_printable(value)} is not of the form X.Y.Z")
    return value


_KEY_TYPES = {
    "ssh-ed25519": "ed25519",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
    "ssh-rsa": "rsa",
    "sk-ssh-ed25519@openssh.com": "ed25519-sk",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ecdsa-sk",
}
MIN_RSA_BITS = 3072


def _read_ssh_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", blob[offset : offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated")
    return blob[offset + 4 : end], end


# The curve name and uncompressed point length (0x04 || X || Y) of each ECDSA key type.
_ECDSA_POINTS = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
MAX_PUBLIC_KEY_BYTES = 16384  # a 16384-bit RSA key line is under 3 KiB
# C0/C1 controls and DEL (ESC starts an ANSI sequence, BEL rings) and the bidirectional
# overrides that make a terminal show a comment other than the stored one.
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _key_fields(blob: bytes) -> list[bytes]:
    """The SSH wire strings of a public key blob; ValueError when truncated."""
    fields, offset = [], 0
    while offset < len(blob):
        field, offset = _read_ssh_string(blob, offset)
        fields.append(field)
    return fields


def _key_shape_problem(kind: str, fields: list[bytes]) -> str | None:
    """Why the blob's fields are not a `kind` public key (RFC 4253, 5656, 8709, PROTOCOL.u2f)."""
    body = fields[1:]
    if kind == "ssh-rsa":
        if len(body) != 2:
            return "ssh-rsa key data must hold an exponent and a modulus"
        bits = int.from_bytes(body[1], "big").bit_length()
        if bits < MIN_RSA_BITS:
            return f"RSA key has {bits} bits: at least {MIN_RSA_BITS} are required"
        return None
    security_key = kind.startswith("sk-")
    if security_key:
        if len(body) < 2 or not body[-1]:
            return f"{kind} key data lacks its application"
        body = body[:-1]
    if kind.endswith("ed25519") or kind == "sk-ssh-ed25519@openssh.com":
        if len(body) != 1 or len(body[0]) != 32:
            return f"{kind} key data has the wrong length"
        return None
    curve = kind.removeprefix("sk-").removeprefix("ecdsa-sha2-").removesuffix("@openssh.com")
    if len(body) != 2 or body[0].decode(errors="replace") != curve:
        return f"{kind} key data does not name its curve {curve}"
    if len(body[1]) != _ECDSA_POINTS[curve] or body[1][:1] != b"\x04":
        return f"{kind} key data is not a {curve} point"
    return None


def firewall_cidr(value: str) -> str:
    """A CIDR block as Hetzner's firewall rules take it, in the canonical form the API answers
    with (RFC 5952 for IPv6), so what fatctl declares and what it reads back compare equal.
    Hetzner: "IPs must be provided in CIDR block notation [...] The CIDR blocks may refer to
    networks (with empty host bits) or single hosts"; anything else it refuses."""
    if not isinstance(value, str) or "/" not in value:
        raise BadInput(f"CIDR block {_printable(str(value))} needs a prefix length (/N)")
    try:
        network = ipaddress.ip_network(value, strict=False)
        address = ipaddress.ip_interface(value).ip
    except ValueError:
        raise BadInput(f"CIDR block {_printable(value)} is not an IP network") from None
    if address != network.network_address:
        raise BadInput(f"CIDR block {_printable(value)} has host bits set: use {network}")
    return str(network)


def printable(what: str, value: str, limit: int = 100) -> str:
    """A short free-text value (a key label) that is safe to print on an operator's terminal."""
    if len(value) > limit:
        raise BadInput(f"{what} is longer than {limit} characters")
    if _UNPRINTABLE.search(value) or "\t" in value:
        raise BadInput(f"{what} holds control characters")
    return value


def ssh_public_key(value: str) -> tuple[str, str]:
    """Parse one OpenSSH public key line; return (normalised line, SHA256 fingerprint).

    Exactly one line: a second key (or a CR) would otherwise be folded into the comment, which
    `keys list` prints, so control characters are refused rather than shown to a terminal.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadInput("SSH public key is empty")
    if len(value.encode("utf-8", errors="surrogateescape")) > MAX_PUBLIC_KEY_BYTES:
        raise BadInput(f"SSH public key is larger than {MAX_PUBLIC_KEY_BYTES} bytes")
    text = value.strip()
    if "PRIVATE KEY" in text:
        raise BadInput(
            "that is a PRIVATE key: paste the .pub file, and treat the private key as leaked"
        )
    if "\n" in text or "\r" in text:
        raise BadInput("give one public key line: the input holds several lines")
    if _UNPRINTABLE.search(text):
        raise BadInput("SSH public key holds control characters")
    parts = text.split()
    if parts[0] in ("ssh-dss", "ssh-dsa"):
        raise BadInput("DSA keys are not accepted: use ed25519 (ssh-keygen -t ed25519)")
    if parts[0] not in _KEY_TYPES:
        raise BadInput("not an OpenSSH public key: expected 'ssh-ed25519 AAAA...' or similar")
    if len(parts) < 2:
        raise BadInput(f"{parts[0]} key has no key data")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        fields = _key_fields(blob)
    except (binascii.Error, ValueError):
        raise BadInput(f"{parts[0]} key data is not valid base64 key material") from None
    if not fields or fields[0].decode(errors="replace") != parts[0]:
        raise BadInput(f"key data does not match its type {parts[0]}")
    if problem := _key_shape_problem(parts[0], fields):
        raise BadInput(problem)
    digest = hashlib.sha256(blob).digest()
    fingerprint = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    comment = " ".join(parts[2:])[:100]
    line = f"{parts[0]} {parts[1]}" + (f" {comment}" if comment else "")
    return line, fingerprint


def label_selector(value: str) -> tuple[str, str]:
    """`k=v` as used by `--label`; both sides in Hetzner's label alphabet."""
    if not isinstance(value, str) or value.count("=") != 1:
        raise BadInput(f"label {_printable(value)} must be of the form key=value")
    key, val = value.split("=", 1)
    pattern = re.compile(r"^[a-z0-9A-Z](?:[a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?$")
    if not pattern.fullmatch(key) or (val and not pattern.fullmatch(val)):
        raise BadInput(f"label {_printable(value)} uses characters Hetzner labels do not allow")
    return key, val


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address: where plain http (no TLS) is acceptable."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
