"""The pure diff behind `fatctl reconcile`: database vs Hetzner vs Cloudflare vs the boxes.

What may be repaired without a person (an `action`), and why the rest may not:
- DNS records tagged `fatctl` whose agent is gone: deleted (DNS holds no data; a stale name
  pointing at an address Hetzner may hand to someone else is the harm);
- an agent's A/AAAA record missing, pointing elsewhere or duplicated: upserted to the recorded
  address, but only while the database and Hetzner agree on that address;
- a server missing some of the labels the database implies: relabelled (labels are metadata).
Never automatic: deleting servers or primary IPs (a disk, a customer's address), re-creating a
server, resizing, upgrading, or anything on an unhealthy box; those findings carry advice.
This module covers Hetzner; `diff_dns.py` covers DNS, box health and Pulumi stacks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace

from fatctl.infra.engine import REPLACEMENT_LABEL
from fatctl.services.reconcile.diff_dns import dns_findings, health_findings, stack_findings
from fatctl.services.reconcile.views import (
    DOC,
    DRIFT,
    FW_DELETE,
    IN_FLIGHT,
    KINDS,
    LIVE,
    MISSING,
    ORPHAN,
    RELABEL,
    UNHEALTHY,
    CloudFirewall,
    CloudIp,
    CloudServer,
    DbAgent,
    Finding,
    Views,
    has_box,
)

# States no move finishes from: a replacement left in them is an orphan, not the op's.
GONE_STATES = ("destroying", "destroyed")


def diff(views: Views) -> list[Finding]:
    """Every finding, in a stable order (kind, agent, resource)."""
    agents = {a.name: a for a in views.agents}
    found: list[Finding] = []
    if views.servers is not None:
        found += server_findings(agents, views.servers, views.scoped)
    if views.ips is not None:
        found += ip_findings(agents, views.ips, views.servers, views.scoped)
    if views.firewalls is not None:
        found += firewall_findings(agents, views.firewalls, views.servers or (), views.scoped)
    if views.records is not None:
        found += dns_findings(agents, views, views.records)
    if views.health is not None:
        found += health_findings(agents, views.health)
    found += stack_findings(views.stacks)
    found = [held_for_op(f, agents.get(f.agent)) for f in found]
    return sorted(found, key=lambda f: (KINDS.index(f.kind), f.agent, f.resource, f.detail))


def held_for_op(finding: Finding, owner: DbAgent | None) -> Finding:
    """No repair for an agent whose lifecycle op is unfinished: the op's next steps expect the
    cloud as its last step left it (an archive killed after releasing the IPs still has them
    recorded; an upsert would point the name at addresses Hetzner may hand to someone else)."""
    if owner is None or not owner.open_op or not finding.fixable:
        return finding
    advice = f"{owner.open_op} is open: `fatctl {owner.open_op_kind} {owner.name}` finishes it"
    return replace(finding, action="", advice=advice, ref="", params=())


def moving_into(owner: DbAgent | None, labels: Mapping[str, str]) -> bool:
    """A `fatctl move` replacement (labelled `op=<id>`) of an agent whose move is open: not
    an orphan nor a second server, but the op's, until it promotes it. Not for an agent being
    or already destroyed: no move finishes there, and the replacement would be billed unseen."""
    return (
        owner is not None
        and owner.open_op_kind == "move"
        and owner.state not in GONE_STATES
        and REPLACEMENT_LABEL in labels
    )


def left_by_move(owner: DbAgent | None, labels: Mapping[str, str]) -> bool:
    """A move's replacement whose agent went on to be destroyed (a destroy before review 29
    did not refuse an open move): no op will promote it, and no destroy sees it."""
    return owner is not None and owner.state in GONE_STATES and REPLACEMENT_LABEL in labels


MOVE_LEFTOVER = "a move's replacement, left when the agent was destroyed mid-move"


def _orphan_server(srv: CloudServer, owner: DbAgent | None) -> Finding:
    resource = f"server {srv.id} ({srv.name})"
    if owner is not None and owner.state == "destroying" and not left_by_move(owner, srv.labels):
        advice = f"`fatctl destroy {owner.name} --yes` finishes it"
        return Finding(ORPHAN, resource, owner.name, "left by an unfinished destroy", advice=advice)
    why = f"agent {srv.agent} is {owner.state}" if owner else "no agent in the database"
    if left_by_move(owner, srv.labels):
        why = MOVE_LEFTOVER
    if not srv.agent:
        why = "labelled managed-by=fatctl but no agent label"
    advice = (
        "its disk may hold data: inspect, snapshot if needed, then `hcloud server "
        f"disable-protection {srv.id} delete rebuild && hcloud server delete {srv.id}`"
    )
    return Finding(ORPHAN, resource, srv.agent, why, ref=srv.id, advice=advice)


def server_findings(
    agents: Mapping[str, DbAgent], servers: Iterable[CloudServer], scoped: bool
) -> list[Finding]:
    """Orphan servers, and per agent with a box: missing, duplicated, or compared one to one."""
    by_agent: dict[str, list[CloudServer]] = defaultdict(list)
    out: list[Finding] = []
    for srv in servers:
        owner = agents.get(srv.agent)
        if moving_into(owner, srv.labels):
            continue  # an open move's replacement: the op promotes it or the rerun adopts it
        if owner is not None and has_box(owner):
            by_agent[owner.name].append(srv)
        elif owner is not None and owner.state in IN_FLIGHT:
            continue  # a provision in flight: its infra step will adopt this server
        elif not scoped or owner is not None:
            out.append(_orphan_server(srv, owner))
    for agent in agents.values():
        found = by_agent.get(agent.name, [])
        if not has_box(agent):
            continue
        if not found:
            detail = f"no server labelled agent={agent.name} (database: {agent.server_id or '?'})"
            advice = f"find it (unlabelled?) or see {DOC}#missing-server"
            out.append(Finding(MISSING, "server", agent.name, detail, advice=advice))
        elif len(found) > 1:
            detail = f"{len(found)} servers: {', '.join(s.id for s in found)}"
            advice = (
                f"keep {agent.server_id or '?'}, delete the other by hand (`hcloud server delete`)"
            )
            out.append(Finding(DRIFT, "server", agent.name, detail, advice=advice))
        else:
            out += one_server(agent, found[0])
    return out


def one_server(agent: DbAgent, srv: CloudServer) -> list[Finding]:
    """The agent's one server against its row: id, type, addresses, labels, power."""
    res, name = f"server {srv.id}", agent.name
    out: list[Finding] = []
    if agent.server_id and agent.server_id != srv.id:
        detail = f"database records server {agent.server_id}, Hetzner has {srv.id}"
        advice = f"`fatctl box status {name}`; see {DOC}#server-id"
        out.append(Finding(DRIFT, res, name, detail, advice=advice))
    if agent.server_type and srv.server_type != agent.server_type:
        detail = f"type {srv.server_type}, database says {agent.server_type}"
        advice = f"`fatctl box resize {name} {agent.server_type}` restores it (the box restarts)"
        out.append(Finding(DRIFT, res, name, detail, advice=advice))
    for family, want, have in (("ipv4", agent.ipv4, srv.ipv4), ("ipv6", agent.ipv6, srv.ipv6)):
        if want and have != want:
            detail = f"{family} {have or 'none'}, database says {want}"
            out.append(Finding(DRIFT, res, name, detail, advice=f"see {DOC}#ip-drift"))
    wrong = {k: v for k, v in agent.labels.items() if srv.labels.get(k) != v}
    if wrong:
        detail = "labels differ: " + ", ".join(f"{k}={v}" for k, v in sorted(wrong.items()))
        merged = tuple(sorted({**srv.labels, **agent.labels}.items()))
        out.append(Finding(DRIFT, res, name, detail, action=RELABEL, ref=srv.id, params=merged))
    if srv.status != "running" and agent.state in LIVE:
        advice = f"`fatctl box on {name}`"
        out.append(Finding(UNHEALTHY, res, name, f"server is {srv.status}", advice=advice))
    return out


def ip_findings(
    agents: Mapping[str, DbAgent],
    ips: Iterable[CloudIp],
    servers: Iterable[CloudServer] | None,
    scoped: bool,
) -> list[Finding]:
    """Primary IPs: orphans (never released automatically: an address is a customer's
    identity), missing ones, and ones not assigned to their agent's server."""
    server_of = {s.agent: s.id for s in servers or () if REPLACEMENT_LABEL not in s.labels}
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for ip in ips:
        owner = agents.get(ip.agent)
        if moving_into(owner, ip.labels):
            continue
        res = f"primary_ip {ip.id} ({ip.ip})"
        if left_by_move(owner, ip.labels):
            # Hetzner refuses to delete an assigned primary IP (422 must_be_unassigned).
            first = "after deleting the replacement server it is on, " if ip.assignee_id else ""
            advice = f"release it by hand once sure, {first}(`hcloud primary-ip delete {ip.id}`)"
            out.append(Finding(ORPHAN, res, ip.agent, MOVE_LEFTOVER, ref=ip.id, advice=advice))
            continue
        if owner is None:
            if not scoped:
                advice = (
                    "an address customers may still use: release it by hand only when sure "
                    f"(`hcloud primary-ip delete {ip.id}`)"
                )
                why = "no agent in the database"
                out.append(Finding(ORPHAN, res, ip.agent, why, ref=ip.id, advice=advice))
            continue
        seen.add((owner.name, ip.family))
        server = server_of.get(owner.name)
        # A destroyed agent's IPs are kept on purpose (`fatctl destroy` without --release-ips).
        if has_box(owner) and servers is not None and server and ip.assignee_id != server:
            detail = f"assigned to {ip.assignee_id or 'nothing'}, not server {server}"
            out.append(Finding(DRIFT, res, owner.name, detail, advice=f"see {DOC}#ip-drift"))
    for agent in agents.values():
        for family, address in (("ipv4", agent.ipv4), ("ipv6", agent.ipv6)):
            if has_box(agent) and address and (agent.name, family) not in seen:
                detail = f"no {family} primary IP labelled for it (database: {address})"
                advice = f"see {DOC}#ip-drift"
                out.append(
                    Finding(MISSING, f"primary_ip {family}", agent.name, detail, advice=advice)
                )
    return out


def _orphan_firewall(fw: CloudFirewall, owner: DbAgent | None) -> Finding:
    """Deleted when it protects nothing (it holds no data); else the servers come first."""
    res = f"firewall {fw.id} ({fw.name})"
    why = f"agent {fw.agent} is {owner.state}" if owner else "no agent in the database"
    if owner is not None and owner.state == "destroying":
        advice = f"`fatctl destroy {owner.name} --yes` finishes it"
        return Finding(ORPHAN, res, owner.name, why, advice=advice)
    if not fw.applied_to:
        return Finding(ORPHAN, res, fw.agent, why, action=FW_DELETE, ref=fw.id)
    servers = ", ".join(fw.applied_to)
    advice = f"still applied to server {servers}: deal with that server first"
    return Finding(ORPHAN, res, fw.agent, why, advice=advice)


def firewall_findings(
    agents: Mapping[str, DbAgent],
    firewalls: Iterable[CloudFirewall],
    servers: Iterable[CloudServer],
    scoped: bool,
) -> list[Finding]:
    """Orphan firewalls; per agent with a box: a firewall exists and is applied to its server."""
    server_of = {s.agent: s.id for s in servers}
    covered: set[str] = set()
    out: list[Finding] = []
    for fw in firewalls:
        owner = agents.get(fw.agent)
        if owner is not None and has_box(owner):
            covered.add(owner.name)
            server = server_of.get(owner.name)
            if server and server not in fw.applied_to:
                detail = f"not applied to server {server}"
                advice = f"`fatctl apply --agents {owner.name}` applies it"
                out.append(Finding(DRIFT, f"firewall {fw.id}", owner.name, detail, advice=advice))
        elif (owner is None or owner.state not in IN_FLIGHT) and (not scoped or owner is not None):
            out.append(_orphan_firewall(fw, owner))
    for agent in agents.values():
        if has_box(agent) and agent.name not in covered:
            advice = f"`fatctl preview --agents {agent.name}`, then `fatctl apply` recreates it"
            out.append(Finding(MISSING, "firewall", agent.name, "no firewall", advice=advice))
    return out
