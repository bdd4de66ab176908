"""What one agent's box consists of at Hetzner, as plain data: the single source of truth that
both the Pulumi program and the hcloud engine declare from (and that the parity test compares).

Pure: no SDK, no I/O. Names are deterministic so a rerun finds what an earlier run created.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fatctl import validation
from fatctl.domain import AgentSpec, KeyRole, managed_labels
from fatctl.infra.selector import Selector, managed

ANYWHERE = ("0.0.0.0/0", "::/0")
KEY_LABEL = "fatctl-key"  # a fleet key's fingerprint, so both engines find it by selector


@dataclass(frozen=True)
class Rule:
    """One inbound firewall rule; `port` is None for ICMP."""

    protocol: str
    port: str | None
    source_ips: tuple[str, ...]
    description: str
    direction: str = "in"


@dataclass(frozen=True)
class KeyDecl:
    """One SSH public key at Hetzner (root's first-boot keys, rescue). Keys are fleet-level:
    Hetzner refuses a second upload of the same key, so agents sharing a key share one object,
    which belongs to no agent's stack and survives any one agent's destroy."""

    name: str
    public_key: str
    role: KeyRole
    fingerprint: str = ""

    @property
    def labels(self) -> dict[str, str]:
        return managed_labels(**{KEY_LABEL: self.fingerprint, "role": self.role.value})


@dataclass(frozen=True)
class DesiredBox:
    """Every resource of one agent, named and labelled."""

    server_name: str
    server_type: str
    image: str
    location: str
    backups: bool
    labels: dict[str, str]
    keys: tuple[KeyDecl, ...]
    firewall_name: str
    rules: tuple[Rule, ...]
    ipv4_name: str
    ipv6_name: str
    rdns: str


def firewall_rules(spec: AgentSpec) -> tuple[Rule, ...]:
    """SSH only from the operators' networks; the web and ping from anywhere. The operators'
    blocks are checked and made canonical here, before any call: Hetzner refuses a block with
    host bits and answers IPv6 in RFC 5952 form, which a rerun would otherwise see as a change."""
    operator_cidrs = tuple(validation.firewall_cidr(c) for c in spec.operator_cidrs)
    return (
        Rule("tcp", "22", operator_cidrs, "ssh from operator networks"),
        Rule("tcp", "80", ANYWHERE, "http (ACME and redirect)"),
        Rule("tcp", "443", ANYWHERE, "https"),
        Rule("icmp", None, ANYWHERE, "ping"),
    )


def key_fingerprint(public_key: str) -> str:
    """Hetzner's MD5 fingerprint of the key blob without its colons (a valid label value)."""
    parts = public_key.split()
    try:
        blob = base64.b64decode(parts[1], validate=True) if len(parts) > 1 else b""
    except (binascii.Error, ValueError):
        blob = b""
    # A blob that is not base64 never reaches Hetzner (it refuses it); hash the text instead.
    material = blob or " ".join(parts[:2]).encode()
    return hashlib.md5(material, usedforsecurity=False).hexdigest()


def ssh_keys(spec: AgentSpec) -> tuple[KeyDecl, ...]:
    """Operator keys first, then the customer's; de-duplicated so one key is uploaded once."""
    seen: set[str] = set()
    out: list[KeyDecl] = []
    for role, keys in (
        (KeyRole.OPERATOR, spec.operator_keys),
        (KeyRole.CUSTOMER, spec.customer_keys),
    ):
        for key in keys:
            decl = key_decl(key, role)  # the comment is not part of the identity
            if decl.fingerprint in seen:
                continue
            seen.add(decl.fingerprint)
            out.append(decl)
    return tuple(out)


def key_decl(public_key: str, role: KeyRole) -> KeyDecl:
    """The fleet object for one public key (named and labelled by its Hetzner fingerprint)."""
    fp = key_fingerprint(public_key)
    return KeyDecl(f"fatctl-key-{fp[:16]}", public_key.strip(), role, fp)


def fleet_key_labels(key: KeyDecl, current: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels a fleet key should carry. A key that is an operator's for any agent stays
    `role=operator` (rescue is given operator keys), so agents never relabel back and forth."""
    labels = key.labels
    if (current or {}).get("role") == KeyRole.OPERATOR.value:
        labels["role"] = KeyRole.OPERATOR.value
    return labels


def fleet_key_selector(keys: Iterable[KeyDecl]) -> str:
    """The label selector that finds exactly these fleet keys at Hetzner."""
    return str(managed().within(KEY_LABEL, (k.fingerprint for k in keys)))


def desired_box(spec: AgentSpec) -> DesiredBox:
    return DesiredBox(
        server_name=spec.name,
        server_type=spec.server_type,
        image=spec.image,
        location=spec.location,
        backups=spec.backups,
        labels=dict(spec.labels),
        keys=ssh_keys(spec),
        firewall_name=f"fatctl-{spec.name}",
        rules=firewall_rules(spec),
        ipv4_name=f"{spec.name}-ipv4",
        ipv6_name=f"{spec.name}-ipv6",
        rdns=spec.fqdn,
    )


def ownership_selector(name: str) -> Selector:
    """The Hetzner label selector that finds everything fatctl made for one agent."""
    return managed(agent=name)
