"""The plain-data views `fatctl reconcile` compares, and the findings it reports.

Pure: no SDK, no I/O. The service (`reconcile.py`) fills the views from the database, Hetzner
(everything labelled `managed-by=fatctl`), Cloudflare (every record tagged `fatctl`) and the
boxes' own health reports; `diff.py` turns them into `Finding`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fatctl.services.common.steps import step_index

ORPHAN, MISSING, DRIFT, UNHEALTHY = "orphan", "missing", "drift", "unhealthy"
KINDS = (ORPHAN, MISSING, DRIFT, UNHEALTHY)

# Fix actions reconcile may apply by itself (everything else needs a person).
DNS_DELETE, DNS_UPSERT, RELABEL = "dns.delete", "dns.upsert", "server.relabel"
FW_DELETE = "firewall.delete"
SAFE_ACTIONS = (DNS_DELETE, DNS_UPSERT, RELABEL, FW_DELETE)
LIVE = frozenset({"ready", "degraded", "upgrading"})
IN_FLIGHT = frozenset({"requested", "provisioning"})
DOC = "docs/operations.md"


@dataclass(frozen=True)
class DbAgent:
    """An agent row as reconcile needs it; `labels` are the Hetzner labels it should carry."""

    name: str
    state: str
    last_step: str = ""
    server_id: str = ""
    ipv4: str = ""
    ipv6: str = ""
    server_type: str = ""
    runtime_version: str = ""
    engine: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    # The agent's unfinished lifecycle op ("archive (op 3, failed after step infra)") and its
    # kind, "" when none: its steps own the agent's cloud resources until it finishes.
    open_op: str = ""
    open_op_kind: str = ""


@dataclass(frozen=True)
class CloudServer:
    id: str
    name: str
    server_type: str
    status: str
    ipv4: str
    ipv6: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def agent(self) -> str:
        return self.labels.get("agent", "")


@dataclass(frozen=True)
class CloudIp:
    id: str
    name: str
    family: str  # ipv4 | ipv6
    ip: str
    assignee_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def agent(self) -> str:
        return self.labels.get("agent", "")


@dataclass(frozen=True)
class CloudFirewall:
    id: str
    name: str
    applied_to: tuple[str, ...] = ()  # server ids
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def agent(self) -> str:
        return self.labels.get("agent", "")


@dataclass(frozen=True)
class DnsRecord:
    id: str
    type: str
    name: str
    content: str
    tags: tuple[str, ...] = ()

    @property
    def agent(self) -> str:
        """The name in the record's `agent:<name>` tag ("" when it has none)."""
        for tag in self.tags:
            key, sep, value = tag.partition(":")
            if sep and key.lower() == "agent":
                return value
        return ""


@dataclass(frozen=True)
class BoxHealth:
    """One box's answer to its health command, or why it gave none."""

    agent: str
    reachable: bool
    healthy: bool
    runtime_version: str = ""
    problem: str = ""


@dataclass(frozen=True)
class StackDrift:
    """What `pulumi refresh --preview-only --expect-no-changes` found for one agent's stack."""

    agent: str
    changes: tuple[str, ...] = ()  # "server update: server_type cx23 -> cx33", ...
    error: str = ""  # the refresh could not run (lock, CLI missing ...)


@dataclass(frozen=True)
class Views:
    """Everything one reconcile run saw. `cloud`/`dns`/`health` are None when not looked at
    (no token, or skipped), which is different from looked at and found nothing."""

    domain: str
    agents: tuple[DbAgent, ...]
    servers: tuple[CloudServer, ...] | None = None
    ips: tuple[CloudIp, ...] | None = None
    firewalls: tuple[CloudFirewall, ...] | None = None
    records: tuple[DnsRecord, ...] | None = None
    health: tuple[BoxHealth, ...] | None = None
    stacks: tuple[StackDrift, ...] = ()
    scoped: bool = False  # only some agents selected: resources of others are not orphans


@dataclass(frozen=True)
class Finding:
    """One thing that is not as it should be, and what to do about it.

    `action` is one of SAFE_ACTIONS when reconcile can repair it itself (`--fix`), else "" and
    `advice` says what a person should look at or run.
    """

    kind: str
    resource: str
    agent: str
    detail: str
    action: str = ""
    advice: str = ""
    ref: str = ""  # the cloud id the action works on (record id, server id)
    params: tuple[tuple[str, str], ...] = ()  # action inputs (labels, addresses)

    @property
    def fixable(self) -> bool:
        return self.action in SAFE_ACTIONS

    def row(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "resource": self.resource,
            "agent": self.agent or "-",
            "detail": self.detail,
            "fixable": self.fixable,
            "action": self.action,
            "advice": self.advice,
        }


def has_box(agent: DbAgent) -> bool:
    """The database promises a server: live, or provisioning past its `infra` step."""
    if agent.state in LIVE:
        return True
    return agent.state == "provisioning" and step_index(agent.last_step) >= step_index("infra")


def has_dns(agent: DbAgent) -> bool:
    """The database promises A/AAAA records: live, suspended (its records stay on its kept
    IPs, for `fatctl resume`), or provisioning past its `dns` step."""
    if agent.state in LIVE or agent.state == "suspended":
        return True
    return agent.state == "provisioning" and step_index(agent.last_step) >= step_index("dns")
