"""The `InfraEngine` protocol: one small interface over an `AgentSpec`, whichever cloud driver
implements it (Pulumi Automation API or the hcloud SDK directly). Engines return `fatctl.domain`
dataclasses only; no SDK type crosses this boundary.

What only some engines can do is declared, not probed (SkyPilot's `supports()` idea): each engine
lists its `capabilities`, and a flow that can use one checks `supports(engine, Capability.X)`
before it calls the matching protocol below (`FreshCreating`, `KeyIdCaching`, `Refreshing`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from fatctl.domain import AgentSpec, BoxInfo, Plan

if TYPE_CHECKING:
    from fatctl.infra.hcloud.client import Hcloud


# The label of a replacement box's resources (`Replacing`): the id of the op that made them.
REPLACEMENT_LABEL = "op"


class Capability(enum.StrEnum):
    """Optional abilities of an engine, each with the protocol that provides it."""

    FRESH_CREATE = "fresh_create"  # FreshCreating: a never-touched agent's box without lookups
    KEY_IDS = "key_ids"  # KeyIdCaching: fleet key ids seeded from, and kept in, the database
    FLEET_PLAN = "fleet_plan"  # preview the whole fleet from one pass over `hcloud_client()`
    REFRESH = "refresh"  # Refreshing: its state must relearn an out-of-band change (a resize)
    ADDRESSES_FIRST = "addresses_first"  # AddressReserving: the public IPs before the server
    REPLACING = "replacing"  # Replacing: a second server for the agent elsewhere (`fatctl move`)


@runtime_checkable
class InfraEngine(Protocol):
    """What provisioning, rebuilds and fleet previews need from a cloud driver."""

    name: str
    capabilities: frozenset[Capability]

    def hcloud_client(self) -> Hcloud:
        """The Hetzner client of the engine's operational side (power, resize, fleet reads):
        every engine has one, the Pulumi engine through its hcloud engine."""
        ...

    def apply(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        """Create or converge the agent's resources; never replaces a live server."""
        ...

    def plan(self, spec: AgentSpec) -> Plan:
        """What `apply` would change, without changing anything."""
        ...

    def status(self, spec_or_name: AgentSpec | str) -> BoxInfo | None:
        """The box as the cloud sees it now, or None when it does not exist."""
        ...

    def destroy(self, spec: AgentSpec, *, release_ips: bool) -> None:
        """Delete the agent's resources (idempotent); primary IPs survive unless released."""
        ...

    def power_on(self, name: str) -> None: ...

    def power_off(self, name: str) -> None: ...

    def reboot(self, name: str) -> None: ...

    def enable_rescue(self, name: str) -> None: ...

    def snapshot(self, name: str, description: str, labels: dict[str, str]) -> str:
        """Snapshot the server's disk; returns the image id."""
        ...

    def rebuild(self, spec: AgentSpec, image: str, *, user_data: str = "") -> BoxInfo:
        """Reinstall the server from `image`, keeping the server and its primary IPs."""
        ...

    def change_type(self, name: str, server_type: str) -> BoxInfo:
        """Resize (power off, change type keeping the disk, power on)."""
        ...


class FreshCreating(Protocol):
    def apply_fresh(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        """`apply_new` for an agent no earlier run touched: create without looking first."""
        ...

    def apply_new(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        """`apply` for an agent still being provisioned: the only apply that may put its box
        elsewhere when the cloud has no room (the provision re-points DNS and its record)."""
        ...


class KeyIdCaching(Protocol):
    @property
    def project_tag(self) -> str: ...

    def seed_key_ids(self, ids: Mapping[str, str]) -> None:
        """Key ids (fingerprint -> cloud id) an earlier run recorded in this project."""
        ...

    def key_ids(self, spec: AgentSpec) -> dict[str, str]:
        """The cloud ids of the spec's fleet keys, as far as this engine has ensured them."""
        ...


@dataclass(frozen=True)
class ReservedAddresses:
    """The box's public addresses, known before its server exists (the box's IPv6 address in
    its /64, as `BoxInfo.ipv6`)."""

    ipv4: str
    ipv6: str
    primary_ipv4_id: str
    primary_ipv6_id: str


class AddressReserving(Protocol):
    def reserve_addresses(self, spec: AgentSpec) -> ReservedAddresses:
        """Create or adopt the agent's primary IPs without its server, so DNS can point at
        them while the box boots; a later `apply_fresh` in this process assigns these."""
        ...


class Replacing(Protocol):
    """A replacement box beside the agent's live one (`fatctl move`): its server and primary
    IPs carry the labels `agent=<name>` and `op=<op id>` (the ordinary lookups leave such
    resources out) and the server is named `<name>-mv<op id>`, since names are unique per
    project; `promote` gives them the agent's own names and labels once the old box is gone."""

    def reserve_replacement(self, spec: AgentSpec, op_id: int) -> ReservedAddresses:
        """Create or adopt the replacement's primary IPs in `spec.location`."""
        ...

    def create_replacement(self, spec: AgentSpec, *, user_data: str, op_id: int) -> BoxInfo:
        """Create or adopt the replacement server on those IPs, in the agent's firewall."""
        ...

    def retire(self, spec: AgentSpec, *, keep_server_id: str) -> None:
        """Delete the agent's old server and release its primary IPs (never the firewall,
        the server `keep_server_id` or the IPs on it); idempotent."""
        ...

    def promote(self, spec: AgentSpec, op_id: int) -> BoxInfo:
        """The replacement renamed and relabelled as the agent's own box; idempotent."""
        ...

    def discard_replacement(self, name: str, op_id: int) -> None:
        """Agent `name`'s replacement of move `op_id` deleted with its primary IPs (a move
        given up); the agent's own box kept; idempotent."""
        ...


class Refreshing(Protocol):
    def refresh(self, spec: AgentSpec) -> None:
        """Relearn the cloud's state for the spec's resources."""
        ...


def supports(engine: InfraEngine, capability: Capability) -> bool:
    return capability in engine.capabilities


def fresh_creating(engine: InfraEngine) -> FreshCreating | None:
    return cast("FreshCreating", engine) if supports(engine, Capability.FRESH_CREATE) else None


def key_id_caching(engine: InfraEngine) -> KeyIdCaching | None:
    return cast("KeyIdCaching", engine) if supports(engine, Capability.KEY_IDS) else None


def address_reserving(engine: InfraEngine) -> AddressReserving | None:
    return (
        cast("AddressReserving", engine) if supports(engine, Capability.ADDRESSES_FIRST) else None
    )


def replacing(engine: InfraEngine) -> Replacing | None:
    return cast("Replacing", engine) if supports(engine, Capability.REPLACING) else None


def refreshing(engine: InfraEngine) -> Refreshing | None:
    return cast("Refreshing", engine) if supports(engine, Capability.REFRESH) else None
