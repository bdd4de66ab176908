"""What exists at Hetzner for one agent (as plain data) and the pure diff against what is
wanted: the hcloud engine's equivalent of `pulumi preview`.

The diff follows the Pulumi program's rules so both engines report the same plan: the server's
image, user_data and SSH keys are ignored (changed over SSH instead), a type change is an
in-place update (resize), a location change is a replacement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fatctl.domain import Plan, ResourceChange
from fatctl.infra.desired import DesiredBox, Rule, fleet_key_labels

RuleKey = tuple[str, str, str | None, tuple[str, ...], str]


def rule_key(rule: Rule) -> RuleKey:
    return (
        rule.direction,
        rule.protocol,
        rule.port,
        tuple(sorted(rule.source_ips)),
        rule.description,
    )


@dataclass(frozen=True)
class SeenKey:
    id: str
    name: str
    public_key: str
    labels: dict[str, str]


@dataclass(frozen=True)
class SeenFirewall:
    id: str
    name: str
    labels: dict[str, str]
    rules: frozenset[RuleKey]
    applied_to: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SeenIp:
    id: str
    name: str
    family: str
    ip: str
    location: str
    labels: dict[str, str]
    auto_delete: bool
    delete_protection: bool
    assignee_id: str = ""
    ptr: str = ""


@dataclass(frozen=True)
class SeenServer:
    id: str
    name: str
    server_type: str
    image: str
    location: str
    status: str
    labels: dict[str, str]
    backups: bool
    delete_protection: bool
    rebuild_protection: bool
    ipv4_id: str = ""
    ipv6_id: str = ""
    ipv4: str = ""
    ipv6: str = ""


@dataclass(frozen=True)
class Observed:
    server: SeenServer | None = None
    keys: dict[str, SeenKey] = field(default_factory=dict)  # by fingerprint (fleet-level)
    firewall: SeenFirewall | None = None
    ips: dict[str, SeenIp] = field(default_factory=dict)  # "ipv4" / "ipv6"


def _change(kind: str, name: str, action: str, detail: str = "") -> ResourceChange:
    return ResourceChange(kind=kind, name=name, action=action, detail=detail)


def _key_changes(box: DesiredBox, seen: Observed) -> list[ResourceChange]:
    """Fleet keys are found by fingerprint and adopted; never deleted for one agent."""
    out = []
    for key in box.keys:
        found = seen.keys.get(key.fingerprint)
        if found is None:
            out.append(_change("ssh_key", key.name, "create"))
        elif found.labels != fleet_key_labels(key, found.labels):
            out.append(_change("ssh_key", key.name, "update", f"adopt {found.name}"))
        else:
            out.append(_change("ssh_key", key.name, "same"))
    return out


def _firewall_change(box: DesiredBox, seen: Observed) -> ResourceChange:
    fw = seen.firewall
    if fw is None:
        return _change("firewall", box.firewall_name, "create")
    diffs = []
    if fw.rules != frozenset(rule_key(r) for r in box.rules):
        diffs.append("rules")
    if fw.labels != box.labels:
        diffs.append("labels")
    return _change("firewall", box.firewall_name, "update" if diffs else "same", ",".join(diffs))


def _ip_changes(box: DesiredBox, seen: Observed) -> list[ResourceChange]:
    out = []
    for family, name in (("ipv4", box.ipv4_name), ("ipv6", box.ipv6_name)):
        ip = seen.ips.get(family)
        if ip is None:
            out.append(_change("primary_ip", name, "create"))
        elif ip.location != box.location:
            out.append(
                _change("primary_ip", name, "replace", f"location {ip.location} -> {box.location}")
            )
        else:
            stale = ip.labels != box.labels or ip.auto_delete or not ip.delete_protection
            out.append(_change("primary_ip", name, "update" if stale else "same"))
    return out


def _server_change(box: DesiredBox, seen: Observed) -> ResourceChange:
    srv = seen.server
    if srv is None:
        return _change("server", box.server_name, "create", f"{box.server_type} {box.location}")
    if srv.location != box.location:
        return _change(
            "server", box.server_name, "replace", f"location {srv.location} -> {box.location}"
        )
    diffs = []
    if srv.server_type != box.server_type:
        diffs.append(f"server_type {srv.server_type} -> {box.server_type}")
    if srv.labels != box.labels:
        diffs.append("labels")
    if srv.backups != box.backups:
        diffs.append(f"backups {srv.backups} -> {box.backups}")
    if not (srv.delete_protection and srv.rebuild_protection):
        diffs.append("protection")
    for family, ip_id in (("ipv4", srv.ipv4_id), ("ipv6", srv.ipv6_id)):
        if family in seen.ips and seen.ips[family].id != ip_id:
            diffs.append(f"{family} binding")
    return _change("server", box.server_name, "update" if diffs else "same", "; ".join(diffs))


def _rdns_changes(box: DesiredBox, seen: Observed) -> list[ResourceChange]:
    out = []
    for family in ("ipv4", "ipv6"):
        name = f"{box.server_name}-rdns-{family}"
        ip = seen.ips.get(family)
        if seen.server is None or ip is None:
            out.append(_change("rdns", name, "create"))
        else:
            out.append(_change("rdns", name, "same" if ip.ptr == box.rdns else "update", ip.ptr))
    return out


def compute_plan(agent: str, box: DesiredBox, seen: Observed) -> Plan:
    """The full plan, in dependency order (keys, firewall, IPs, server, rDNS)."""
    changes = [
        *_key_changes(box, seen),
        _firewall_change(box, seen),
        *_ip_changes(box, seen),
        _server_change(box, seen),
        *_rdns_changes(box, seen),
    ]
    return Plan(agent=agent, changes=tuple(changes))


def destroy_plan(agent: str, seen: Observed, *, release_ips: bool) -> Plan:
    """What `destroy` removes; kept IPs are listed as `same` so the operator sees them stay.
    SSH keys are fleet-level (other agents may use them) and are not listed."""
    changes = [_change("server", seen.server.name, "delete")] if seen.server else []
    if seen.firewall:
        changes.append(_change("firewall", seen.firewall.name, "delete"))
    for ip in seen.ips.values():
        changes.append(_change("primary_ip", ip.name, "delete" if release_ips else "same", "kept"))
    return Plan(agent=agent, changes=tuple(changes))


# -- reading a plan (both engines' plans have the same shape) ---------------------------------

DESTRUCTIVE_KINDS = frozenset({"server", "primary_ip"})
_TYPE_CHANGE = re.compile(r"server_type (\S+) -> (\S+)")


def replaces_live_box(plan: Plan) -> bool:
    """A replacement of the server or of a primary IP: the customer's box (its disk, or the IP
    its webhooks and OAuth callbacks point at) would be destroyed and made anew."""
    return any(c.action == "replace" and c.kind in DESTRUCTIVE_KINDS for c in plan.changes)


def resize_of(plan: Plan) -> tuple[str, str] | None:
    """(old, new) server type when the plan resizes the server in place, else None."""
    for change in plan.changes:
        if change.kind == "server" and change.action == "update":
            found = _TYPE_CHANGE.search(change.detail)
            if found:
                return found.group(1), found.group(2)
    return None
