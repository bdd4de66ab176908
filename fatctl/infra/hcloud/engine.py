"""The hcloud engine: `InfraEngine` over the hcloud SDK directly, idempotent by labels.

For operators without Pulumi and for the local sandbox. Every run looks up the agent's
resources by `managed-by=fatctl,agent=<name>`, adopts what exists, creates what is missing,
and reports each resource as create/update/same through the `on_change` sink. Like the Pulumi
program it never replaces a live server: image/user_data/key drift is ignored, and a location
change is refused (a rebuild elsewhere is an explicit, separate operation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from fatctl.config import Settings
from fatctl.domain import AgentSpec, BoxInfo, ChangeSink, Plan, ResourceChange
from fatctl.domain import ignore_change as _ignore
from fatctl.errors import CloudError, NotFound
from fatctl.infra.capacity import parse_fallbacks
from fatctl.infra.desired import DesiredBox, desired_box
from fatctl.infra.engine import Capability, ReservedAddresses
from fatctl.infra.hcloud import ops
from fatctl.infra.hcloud import replace as replacement
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.converge import (
    attach_firewall,
    create_server,
    ensure_firewall,
    ensure_ips,
)
from fatctl.infra.hcloud.fallback import placed
from fatctl.infra.hcloud.fresh import FALL_BACK_ON, create_fresh, reserve_ips, reserved_addresses
from fatctl.infra.hcloud.keys import (
    ensure_fleet_keys,
    ensured_ids,
    forget_keys,
    fresh_keys,
    operator_keys,
    remember_ids,
)
from fatctl.infra.hcloud.observe import Bound, observe, seen_server
from fatctl.infra.plan import Observed, compute_plan
from fatctl.pacing.retry import RateBudget
from fatctl.pacing.timing import Timing


class HcloudEngine:
    name = "hcloud"
    capabilities = frozenset(
        {
            Capability.FRESH_CREATE,
            Capability.KEY_IDS,
            Capability.FLEET_PLAN,
            Capability.ADDRESSES_FIRST,
            Capability.REPLACING,
        }
    )

    def __init__(
        self,
        settings: Settings,
        *,
        timing: Timing | None = None,
        on_change: ChangeSink | None = None,
        budget: RateBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.h = Hcloud(settings, timing or Timing(), budget=budget, sleep=sleep)
        self.emit = on_change or _ignore
        self.fallbacks = parse_fallbacks(settings.fallbacks)
        self._reserved: dict[str, dict[str, Any]] = {}  # agent -> its IPs reserve_addresses made

    def hcloud_client(self) -> Hcloud:
        return self.h

    # -- declarative side -------------------------------------------------------------------

    def plan(self, spec: AgentSpec) -> Plan:
        observed, _ = observe(self.h, spec.name)
        return compute_plan(spec.name, desired_box(spec), observed)

    def apply(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        """Create or adopt the box where the spec says. Never a capacity fallback: an existing
        agent's addresses are in DNS and its record, which only a provision re-points."""
        return self._apply_adopting(spec, user_data)

    def apply_new(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        """`apply` for an agent still being provisioned: where Hetzner has no room for its
        server, in the first of the operator's fallbacks that has (the BoxInfo says which)."""
        attempts = (self._apply_adopting, self._apply_adopting)
        return placed(self.h, spec, user_data, self.fallbacks, attempts, self.emit)

    def apply_fresh(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        """`apply_new` for an agent no earlier run touched at Hetzner: create without lookups
        (see hcloud_fresh). Anything already there makes a create fail before it duplicates,
        and the full adopt-or-create `apply` takes over from what exists."""
        attempts = (self._apply_fresh, self._apply_adopting)
        return placed(self.h, spec, user_data, self.fallbacks, attempts, self.emit)

    def _apply_adopting(self, spec: AgentSpec, user_data: str) -> BoxInfo:
        try:
            return self._apply(spec, user_data)
        except CloudError as exc:
            # A create whose response was lost succeeded anyway; its retry then hits the name.
            # Look again and adopt what the lost call made instead of failing or duplicating.
            if exc.code != "uniqueness_error":
                raise
            return self._apply(spec, user_data)

    def _apply_fresh(self, spec: AgentSpec, user_data: str) -> BoxInfo:
        box = desired_box(spec)
        try:
            keys = fresh_keys(self.h, box.keys, self.emit)
            reserved = self._reserved.pop(spec.name, None)  # first try: the asked location
            return create_fresh(self.h, spec.name, box, keys, user_data, self.emit, reserved)
        except CloudError as exc:
            if exc.code not in FALL_BACK_ON:
                raise
            forget_keys(self.h)  # a cached key may be the thing that is gone
            return self._apply_adopting(spec, user_data)

    def reserve_addresses(self, spec: AgentSpec) -> ReservedAddresses:
        """The agent's primary IPs before its server (DNS points at them while it boots);
        `apply_fresh` in this process then assigns them instead of creating them."""
        ips = reserve_ips(self.h, desired_box(spec), self.emit)
        self._reserved[spec.name] = ips
        return reserved_addresses(ips)

    # -- a replacement box elsewhere (`fatctl move`; see hcloud/replace.py) ------------------

    def reserve_replacement(self, spec: AgentSpec, op_id: int) -> ReservedAddresses:
        return reserved_addresses(replacement.reserve(self.h, desired_box(spec), op_id, self.emit))

    def create_replacement(self, spec: AgentSpec, *, user_data: str, op_id: int) -> BoxInfo:
        box = desired_box(spec)
        server, ips, firewall = replacement.create(self.h, box, op_id, user_data, self.emit)
        addresses = reserved_addresses(ips)
        return BoxInfo(agent=spec.name, server_id=str(server.id), ipv4=addresses.ipv4,
                       ipv6=addresses.ipv6, status="running", server_type=box.server_type,
                       location=box.location, image=box.image,
                       primary_ipv4_id=addresses.primary_ipv4_id,
                       primary_ipv6_id=addresses.primary_ipv6_id, firewall_id=str(firewall.id),
                       labels=tuple(sorted(box.labels.items())))  # fmt: skip

    def retire(self, spec: AgentSpec, *, keep_server_id: str) -> None:
        replacement.retire(self.h, spec.name, keep_server_id, self.emit)

    def promote(self, spec: AgentSpec, op_id: int) -> BoxInfo:
        replacement.promote(self.h, desired_box(spec), op_id, self.emit)
        return self._info(spec.name)

    def discard_replacement(self, name: str, op_id: int) -> None:
        replacement.discard(self.h, name, op_id, self.emit)

    # -- fleet key ids, kept by the caller so the next process needs no key listing ---------

    @property
    def project_tag(self) -> str:
        return self.h.project_tag

    def seed_key_ids(self, ids: Mapping[str, str]) -> None:
        """Key ids (fingerprint -> Hetzner id) recorded in this project by an earlier run."""
        remember_ids(self.h, ids)

    def key_ids(self, spec: AgentSpec) -> dict[str, str]:
        """The Hetzner ids of the spec's fleet keys, as far as this engine has ensured them."""
        return ensured_ids(self.h, desired_box(spec).keys)

    def _apply(self, spec: AgentSpec, user_data: str) -> BoxInfo:
        box = desired_box(spec)
        observed, bound = observe(self.h, spec.name)
        if observed.server and observed.server.location != box.location:
            raise CloudError(
                f"agent {spec.name} runs in {observed.server.location}, not {box.location}: moving "
                "a live box replaces it; refused (destroy and provision again, keeping nothing)",
                code="replace_refused",
            )
        changed: list[ResourceChange] = []
        outer = self.emit

        def record(change: ResourceChange) -> None:
            if change.action != "same":
                changed.append(change)
            outer(change)

        self.emit = record
        try:
            self._converge(box, observed, bound, user_data)
        finally:
            self.emit = outer
        # Nothing changed: what we read first is still true, so spare the API four calls.
        info = box_info(spec.name, observed) if not changed else self.status(spec.name)
        if info is None:
            raise CloudError(f"server {spec.name} vanished during apply", code="not_found")
        return info

    def _converge(self, box: DesiredBox, observed: Observed, bound: Bound, user_data: str) -> None:
        keys = ensure_fleet_keys(self.h, box.keys, bound.keys, self.emit)
        firewall = ensure_firewall(self.h, box, bound, self.emit)
        ips = ensure_ips(self.h, box, bound, self.emit)
        if bound.server is None:
            server = create_server(self.h, box, keys, firewall, ips, user_data)
            self.emit(
                _change("server", box.server_name, "create", f"{box.server_type} {box.location}")
            )
            self._converge_server(box, server, created=True)
        else:
            server = bound.server
            self._converge_server(box, server, created=False)
            applied = observed.firewall.applied_to if observed.firewall else frozenset()
            # A new server was created inside the firewall; an old one may predate it.
            if str(server.id) not in applied and attach_firewall(self.h, firewall, server):
                self.emit(
                    _change("firewall", box.firewall_name, "update", f"applied to {server.name}")
                )
        # IPs created in this run carry Hetzner's default PTR, which is never ours.
        seen = {f: ip.ptr for f, ip in observed.ips.items() if f in bound.ips}
        ops.set_rdns(self.h, server, ips, seen, box.rdns)
        for family in ("ipv4", "ipv6"):
            action = "same" if seen.get(family) == box.rdns else "update"
            self.emit(_change("rdns", f"{box.server_name}-rdns-{family}", action))

    def _converge_server(self, box: DesiredBox, server: Any, *, created: bool) -> None:
        seen = seen_server(server)
        diffs = []
        if seen.server_type != box.server_type:
            ops.change_type(self.h, server, box.server_type)
            diffs.append(f"server_type {seen.server_type} -> {box.server_type}")
        if seen.labels != box.labels:
            self.h.call("label server", partial(server.update, labels=box.labels))
            diffs.append("labels")
        if seen.backups != box.backups:
            ops.set_backups(self.h, server, box.backups)
            diffs.append(f"backups {box.backups}")
        if not (seen.delete_protection and seen.rebuild_protection):
            ops.set_protection(self.h, server, True)
            diffs.append("protection")
        if not created:
            self.emit(
                _change("server", box.server_name, "update" if diffs else "same", "; ".join(diffs))
            )

    def status(self, spec_or_name: AgentSpec | str) -> BoxInfo | None:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        observed, _ = observe(self.h, name)
        return box_info(name, observed)

    def destroy(self, spec: AgentSpec, *, release_ips: bool) -> None:
        """Idempotent: whatever is already gone is skipped; IPs are kept unless released.
        SSH keys are fleet-level (other agents may use them): never deleted here."""
        _, bound = observe(self.h, spec.name)
        if bound.server is not None:
            ops.set_protection(self.h, bound.server, False)
            ops.act(self.h, f"delete server {spec.name}", bound.server.delete)
            self.emit(_change("server", spec.name, "delete"))
        if bound.firewall is not None:
            self.h.call("delete firewall", bound.firewall.delete)
            self.emit(_change("firewall", bound.firewall.name, "delete"))
        for ip in bound.ips.values():
            if release_ips:  # unassigned by now: their server was deleted first
                ops.delete_primary_ip(self.h, ip)
            self.emit(_change("primary_ip", ip.name, "delete" if release_ips else "same", "kept"))

    # -- operational actions ----------------------------------------------------------------

    def _server(self, name: str) -> tuple[Any, Bound]:
        _, bound = observe(self.h, name)
        if bound.server is None:
            raise NotFound(f"agent {name} has no server at Hetzner")
        return bound.server, bound

    def power_on(self, name: str) -> None:
        ops.power_on(self.h, self._server(name)[0])

    def power_off(self, name: str) -> None:
        ops.power_off(self.h, self._server(name)[0])

    def reboot(self, name: str) -> None:
        ops.reboot(self.h, self._server(name)[0])

    def enable_rescue(self, name: str) -> None:
        server, bound = self._server(name)
        ops.enable_rescue(self.h, server, [int(k.id) for k in operator_keys(bound.keys)])

    def snapshot(self, name: str, description: str, labels: dict[str, str]) -> str:
        return ops.snapshot(self.h, self._server(name)[0], description, labels)

    def rebuild(self, spec: AgentSpec, image: str, *, user_data: str = "") -> BoxInfo:
        ops.rebuild(self.h, self._server(spec.name)[0], image, user_data)
        return self._info(spec.name)

    def change_type(self, name: str, server_type: str) -> BoxInfo:
        ops.change_type(self.h, self._server(name)[0], server_type)
        return self._info(name)

    def _info(self, name: str) -> BoxInfo:
        info = self.status(name)
        if info is None:
            raise NotFound(f"agent {name} has no server at Hetzner")
        return info


def _change(kind: str, name: str, action: str, detail: str = "") -> ResourceChange:
    return ResourceChange(kind=kind, name=name, action=action, detail=detail)


def box_info(name: str, observed: Observed) -> BoxInfo | None:
    srv = observed.server
    if srv is None:
        return None
    return BoxInfo(
        agent=name,
        server_id=srv.id,
        ipv4=srv.ipv4,
        ipv6=srv.ipv6,
        status=srv.status,
        server_type=srv.server_type,
        location=srv.location,
        image=srv.image,
        primary_ipv4_id=srv.ipv4_id,
        primary_ipv6_id=srv.ipv6_id,
        firewall_id=observed.firewall.id if observed.firewall else "",
        labels=tuple(sorted(srv.labels.items())),
    )
