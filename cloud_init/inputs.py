"""Checks on an `AgentSpec` before anything is rendered from it.

Everything here ends up in YAML, shell scripts or unit files on a box, so values are held to
narrow shapes: a name that is a DNS label, versions that are versions, one-line SSH keys.
A bad value is one clear `BadInput` line, before a single file is produced.
"""

from __future__ import annotations

import re

from fatctl.domain import AgentSpec, HostKeyPair
from fatctl.errors import BadInput

IMAGES = frozenset({"debian-12", "debian-13", "ubuntu-24.04"})
HOST_KEY_TYPES = {
    "ssh-ed25519": "ed25519",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
    "ssh-rsa": "rsa",
}
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# An age X25519 recipient (fatctl.backup_keys): "age1" and 32 bytes of Bech32 with its checksum.
_AGE_RECIPIENT = re.compile(r"age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}")
_PUBKEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\n\r]*)?$"
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9_./-]*$")
_ENDPOINT = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d+)?/?$")


def check_version(what: str, value: str) -> None:
    if not _VERSION.fullmatch(value):
        raise BadInput(f"{what} {value!r} is not a version like 1.2.3")


def check_spec(spec: AgentSpec) -> None:
    """Raise BadInput on the first value that cannot be rendered safely."""
    if not _LABEL.fullmatch(spec.name):
        raise BadInput(f"agent name {spec.name!r} is not a DNS label (a-z, 0-9, -)")
    if not _DOMAIN.fullmatch(spec.domain):
        raise BadInput(f"domain {spec.domain!r} is not a DNS name")
    if not _AGENT_ID.fullmatch(spec.agent_id):
        raise BadInput(f"agent id {spec.agent_id!r} has characters outside [A-Za-z0-9_-]")
    # A golden image is booted by its snapshot id (`fatctl image build`); stock ones by name.
    if spec.image not in IMAGES and not (spec.golden_image and spec.image.isdigit()):
        raise BadInput(f"image {spec.image!r} is not one of {', '.join(sorted(IMAGES))}")
    check_version("runtime version", spec.runtime_version)
    check_version("node version", spec.node_version)
    if not spec.operator_keys:
        raise BadInput("no operator keys: fatctl could never log in to this box")
    for key in (*spec.operator_keys, *spec.customer_keys):
        if not _PUBKEY.fullmatch(key.strip()):
            raise BadInput(f"not a one-line OpenSSH public key: {key[:40]!r}")
    host_key_kinds(spec.host_keys)
    if spec.r2 is not None:
        if not _ENDPOINT.fullmatch(spec.r2.endpoint):
            raise BadInput(f"R2 endpoint {spec.r2.endpoint!r} is not an http(s) URL")
        if not _BUCKET.fullmatch(spec.r2.bucket):
            raise BadInput(f"R2 bucket {spec.r2.bucket!r} is not a bucket name")
        if not _PREFIX.fullmatch(spec.r2.prefix) or ".." in spec.r2.prefix:
            raise BadInput(f"R2 prefix {spec.r2.prefix!r} has unsafe characters")
    if spec.backup_recipient and not _AGE_RECIPIENT.fullmatch(spec.backup_recipient):
        raise BadInput(f"backup recipient {spec.backup_recipient[:70]!r} is not an age1... key")


def host_key_kinds(keys: tuple[HostKeyPair, ...]) -> list[tuple[str, HostKeyPair]]:
    """cloud-init's `ssh_keys` names (ed25519, ecdsa, rsa) for the supplied host keys."""
    seen: dict[str, HostKeyPair] = {}
    for key in keys:
        kind = HOST_KEY_TYPES.get(key.key_type)
        if kind is None:
            raise BadInput(f"unsupported host key type {key.key_type!r}")
        if kind in seen:
            raise BadInput(f"two {kind} host keys supplied; cloud-init takes one of each type")
        if "PRIVATE KEY-----" not in key.private_key_pem:
            raise BadInput(f"the {kind} host key has no private key in OpenSSH PEM form")
        if not key.public_key.startswith(key.key_type + " "):
            raise BadInput(f"the {kind} host public key does not match its type")
        seen[kind] = key
    return list(seen.items())
