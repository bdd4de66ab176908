"""What one agent's box consists of at Hetzner, as plain data: the single source of truth that
both the Pulumi program and the hcloud engine declare from (and that the parity test compares).

Pure: no SDK, no I/O. Names are deterministic so a rerun finds what an earlier run created.
"""

from __future__ import annotations

from dataclasses import dataclass

from fatctl.domain import AgentSpec, KeyRole

ANYWHERE = ("0.0.0.0/0", "::/0")


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
    """One SSH public key uploaded to Hetzner for the box (root's first-boot keys, rescue)."""

    name: str
    public_key: str
    role: KeyRole


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

    def key_labels(self, key: KeyDecl) -> dict[str, str]:
        return {**self.labels, "role": key.role.value}


def firewall_rules(spec: AgentSpec) -> tuple[Rule, ...]:
    """SSH only from the operators' networks; the web and ping from anywhere."""
    return (
        Rule("tcp", "22", tuple(spec.operator_cidrs), "ssh from operator networks"),
        Rule("tcp", "80", ANYWHERE, "http (ACME and redirect)"),
        Rule("tcp", "443", ANYWHERE, "https"),
        Rule("icmp", None, ANYWHERE, "ping"),
    )


def ssh_keys(spec: AgentSpec) -> tuple[KeyDecl, ...]:
    """Operator keys first, then the customer's; de-duplicated so one key is uploaded once."""
    seen: set[str] = set()
    out: list[KeyDecl] = []
    for role, keys in (
        (KeyRole.OPERATOR, spec.operator_keys),
        (KeyRole.CUSTOMER, spec.customer_keys),
    ):
        for index, key in enumerate(keys):
            material = " ".join(key.split()[:2])  # the comment is not part of the identity
            if material in seen:
                continue
            seen.add(material)
            out.append(KeyDecl(f"{spec.name}-{role.value}-{index}", key.strip(), role))
    return tuple(out)


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


def ownership_selector(name: str) -> str:
    """The Hetzner label selector that finds everything fatctl made for one agent."""
    return f"managed-by=fatctl,agent={name}"
