"""Typed domain objects shared by every layer.

Frozen dataclasses with no SDK types in them: services, renderers, stacks and engines all
take these, so an engine can be swapped without the rest of fatctl noticing (the hcloud-python
`domain.py` vs `client.py` split). Nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fatctl.serving import ModelChoice


class ServicePlan(enum.StrEnum):
    """What the customer pays for: we hold the model API keys (managed) or they bring theirs."""

    MANAGED = "managed"
    BYOK = "byok"


class AgentState(enum.StrEnum):
    """Life cycle of an agent box; transitions are enforced by `ALLOWED_TRANSITIONS`."""

    REQUESTED = "requested"
    PROVISIONING = "provisioning"
    READY = "ready"
    UPGRADING = "upgrading"
    DEGRADED = "degraded"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"
    # No box, state kept: the newest state backup, the primary IPs and DNS wait for `resume`.
    SUSPENDED = "suspended"
    # No box, no addresses: only the backups (and /data) are kept, until `purge_after`.
    ARCHIVED = "archived"


ALLOWED_TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    AgentState.REQUESTED: frozenset({AgentState.PROVISIONING, AgentState.DESTROYING}),
    AgentState.PROVISIONING: frozenset(
        {
            AgentState.READY,
            AgentState.DEGRADED,
            AgentState.DESTROYING,
            AgentState.SUSPENDED,
            AgentState.ARCHIVED,
        }
    ),
    AgentState.READY: frozenset(
        {
            AgentState.UPGRADING,
            AgentState.DEGRADED,
            AgentState.DESTROYING,
            AgentState.PROVISIONING,
            AgentState.SUSPENDED,
            AgentState.ARCHIVED,
        }
    ),
    AgentState.UPGRADING: frozenset({AgentState.READY, AgentState.DEGRADED}),
    AgentState.DEGRADED: frozenset(
        {
            AgentState.READY,
            AgentState.PROVISIONING,
            AgentState.UPGRADING,
            AgentState.DESTROYING,
            AgentState.SUSPENDED,
            AgentState.ARCHIVED,
        }
    ),
    AgentState.DESTROYING: frozenset({AgentState.DESTROYED}),
    AgentState.DESTROYED: frozenset(),
    # `resume` provisions a fresh box on the kept addresses and restores the newest backup.
    AgentState.SUSPENDED: frozenset(
        {AgentState.PROVISIONING, AgentState.ARCHIVED, AgentState.DESTROYING}
    ),
    # Only `archive purge` leaves an archive (crypto-shredding the backup identity).
    AgentState.ARCHIVED: frozenset({AgentState.DESTROYING}),
}


def can_transition(current: AgentState, target: AgentState) -> bool:
    """True when the state machine allows `current` -> `target` (staying put is always allowed)."""
    return current == target or target in ALLOWED_TRANSITIONS[current]


class StepPhase(enum.StrEnum):
    """Where one host's step of a rollout (or apply) stands; stored as its value."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"  # the change failed its gate and the box is back where it was
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"  # never started: the rollout was aborted first
    SKIPPED = "skipped"  # apply: a later wave after a halt


class RolloutState(enum.StrEnum):
    """A whole rollout (or apply run); stored as its value."""

    RUNNING = "running"
    HALTED = "halted"  # failures exceeded the policy; resumable after a fix
    COMPLETED = "completed"
    ABORTED = "aborted"


class KeyRole(enum.StrEnum):
    """Who an SSH public key belongs to."""

    OPERATOR = "operator"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class HostKeyPair:
    """A pre-generated SSH host key: the private half goes to the box, the public half is pinned."""

    key_type: str  # "ssh-ed25519", "ecdsa-sha2-nistp256", ...
    public_key: str  # OpenSSH one-line public key, "ssh-ed25519 AAAA..."
    private_key_pem: str = field(repr=False)  # OpenSSH PEM; secret, never logged


@dataclass(frozen=True)
class R2Location:
    """Where the agent's storage lives; credentials are not here (they go over SSH)."""

    endpoint: str  # https://<account>.r2.cloudflarestorage.com, or the sandbox's moto URL
    bucket: str
    prefix: str  # agents/<id>/


@dataclass(frozen=True)
class AgentSpec:
    """Everything needed to describe one agent's box, independent of any cloud SDK.

    Rendering (cloud-init), the Pulumi program and the hcloud engine are all pure functions
    of this object, which is what makes the parity test between engines meaningful.
    """

    name: str
    agent_id: str
    owner_email: str
    plan: ServicePlan
    domain: str
    server_type: str = "cx23"
    location: str = "fsn1"
    image: str = "debian-12"
    runtime_version: str = "2026.9.6"
    node_version: str = "24.21.0"
    operator_keys: tuple[str, ...] = ()
    customer_keys: tuple[str, ...] = ()
    operator_cidrs: tuple[str, ...] = ("0.0.0.0/0", "::/0")
    host_keys: tuple[HostKeyPair, ...] = ()
    r2: R2Location | None = None
    golden_image: bool = False  # the image already carries Node, packages and the runtime
    tls_internal: bool = False  # Caddy's local CA instead of ACME (the sandbox has no internet)
    extra_labels: tuple[tuple[str, str], ...] = ()
    # What the agent serves (see `fatctl.serving`); no key or token is ever part of the spec.
    model: ModelChoice | None = None
    channels: tuple[str, ...] = ()  # ChannelKind values
    senders: tuple[tuple[str, str], ...] = ()  # (SenderKind value, id), sorted
    telegram_api_root: str = ""  # the Bot API root; "" is Telegram's own
    acme_email: str = ""  # Caddy's ACME account: Let's Encrypt, then ZeroSSL (operations.md)
    # The age recipient the box encrypts state backups to; "" = the box takes no backups.
    backup_recipient: str = ""

    @property
    def fqdn(self) -> str:
        """The public name of the box, `<agent>.<domain>`."""
        return f"{self.name}.{self.domain}"

    @property
    def stack_name(self) -> str:
        """The Pulumi stack that owns this agent's resources."""
        return f"agent-{self.name}"

    @property
    def backups(self) -> bool:
        """Managed customers get Hetzner backups; BYOK customers opt in elsewhere."""
        return self.plan == ServicePlan.MANAGED

    @property
    def customer_shell(self) -> bool:
        """Whether the customer's own keys get a login ("it's your server, we maintain it")."""
        return bool(self.customer_keys)

    @property
    def labels(self) -> dict[str, str]:
        """Hetzner labels; `managed-by=fatctl` is how reconcile finds what is ours."""
        base = managed_labels(
            agent=self.name, owner=owner_label(self.owner_email), plan=self.plan.value
        )
        base.update(dict(self.extra_labels))
        return base


def owner_label(email: str) -> str:
    """Hetzner label values allow [a-z0-9._-] only: encode an e-mail address into that set."""
    out = []
    for ch in email.lower():
        if ch.isalnum() or ch in "._-":
            out.append(ch)
        elif ch == "@":
            out.append("_at_")
        else:
            out.append("-")
    return "".join(out)[:63].strip("._-")


@dataclass(frozen=True)
class BoxInfo:
    """What an infra engine reports about a box after `apply` or `status`."""

    agent: str
    server_id: str
    ipv4: str
    ipv6: str
    status: str  # hcloud's server status: running, off, initializing, ...
    server_type: str
    location: str
    image: str
    primary_ipv4_id: str = ""
    primary_ipv6_id: str = ""
    firewall_id: str = ""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ResourceChange:
    """One line of a plan: what would happen to one cloud resource."""

    kind: str  # server, primary_ip, firewall, ssh_key, rdns, dns_record
    name: str
    action: str  # create, update, replace, delete, same
    detail: str = ""


# How every cloud resource, DNS record and snapshot fatctl makes says it is fatctl's: reconcile,
# adoption and cleanup look for exactly this label (Hetzner) or tag/comment (Cloudflare).
MANAGED_BY = "managed-by"
MANAGER = "fatctl"
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGER}"  # a Hetzner label selector for all of it


# Agent columns `--label k=v` selects on (the box's Hetzner labels mirror these); here rather
# than with the selection (services.common.targets) so shell completion reads it without
# SQLAlchemy.
LABEL_COLUMNS = ("state", "location", "server_type", "image", "runtime_version", "engine")


def managed_labels(**more: str) -> dict[str, str]:
    """`managed-by=fatctl` plus `more`: the labels of anything fatctl creates."""
    return {MANAGED_BY: MANAGER, **more}


def snapshot_labels(agent: str, kind: str) -> dict[str, str]:
    """The labels of a snapshot of `agent`'s box (`kind`: manual, pre-rebuild, pre-upgrade...)."""
    return managed_labels(agent=agent, kind=kind)


_ARM_PREFIXES = ("cax",)  # Hetzner's Ampere types; the rest are x86


def architecture_of(server_type: str) -> str:
    """`arm` or `x86`: what a golden image must have been built on to boot on this type."""
    return "arm" if server_type.startswith(_ARM_PREFIXES) else "x86"


ChangeSink = Callable[[ResourceChange], None]  # where engines report each change as it happens


def ignore_change(change: ResourceChange) -> None:
    """The default `ChangeSink`: nobody is listening."""
    return None


@dataclass(frozen=True)
class Plan:
    """The computed difference between what is wanted and what exists, for one agent."""

    agent: str
    changes: tuple[ResourceChange, ...] = ()

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "same" for c in self.changes)

    @property
    def replaces_server(self) -> bool:
        return any(c.kind == "server" and c.action == "replace" for c in self.changes)


@dataclass(frozen=True)
class RolloutPolicy:
    """How a fleet change is staged: canaries alone first, then batches, halting on failures."""

    canary: int = 1
    batch: int = 5
    batch_percent: float | None = None
    max_failures: int = 0
    health_timeout_s: float = 120.0
    snapshot: bool = False
    keep_versions: int = 3
    backup: bool = True  # a state backup before each box changes (kinds that back up: upgrade)

    def batch_size(self, fleet_size: int) -> int:
        """Resolve `--batch 10%` against the fleet; never below one host."""
        if self.batch_percent is not None:
            return max(1, int(fleet_size * self.batch_percent / 100))
        return max(1, self.batch)


@dataclass(frozen=True)
class HealthReport:
    """The box's own view of itself, as printed by `fat-health --json`."""

    healthy: bool
    gateway: str
    runtime_version: str
    data_mounted: bool
    disk_free_mb: int = 0
    mem_available_mb: int = 0
    problems: tuple[str, ...] = ()
    ready: bool = False  # OpenClaw's own /readyz answered 200
    # Each configured channel: ready, failing (named by /readyz) or unknown (gateway not up).
    channels: dict[str, str] = field(default_factory=dict)
    # The last state backup (fat-backup's last.json: at, object, size_bytes, took_s, ok,
    # error), None before the first. It does not make a box unhealthy.
    backup: dict[str, object] | None = None
    # The resource guards (issue 20): systemd's automatic restarts of the gateway unit
    # (NRestarts: a leak killed at its MemoryMax= among them) and the unit's memory now and at
    # its peak, in bytes (None where systemd or the kernel did not say).
    gateway_restarts: int = 0
    gateway_memory_bytes: int | None = None
    gateway_memory_peak_bytes: int | None = None
