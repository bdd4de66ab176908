"""A replacement box beside an agent's live one (`fatctl move`), with the hcloud SDK.

Hetzner names are unique per project and primary IPs are bound to a location, so the new box
cannot take the old one's names or addresses while the old one lives: its server is
`<name>-mv<op>` and its IPs `<name>-mv<op>-ipv4|6`, all labelled `agent=<name>` and `op=<op>`
(which `observe` leaves out, so every other flow still sees one box). The agent's firewall
(Hetzner firewalls are not bound to a location) covers both. `retire` deletes the old server
and releases its IPs; `promote` then renames and relabels the replacement as the agent's own
(`PUT /servers/{id}`, `PUT /primary_ips/{id}`: a name and a label set). `discard` (a move
given up) deletes the replacement's server and IPs instead. Every function is idempotent by
labels and names, so a rerun after a kill adopts what an earlier run made.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from fatctl.domain import ChangeSink, ResourceChange
from fatctl.errors import StateError
from fatctl.infra.desired import DesiredBox, ownership_selector
from fatctl.infra.engine import REPLACEMENT_LABEL
from fatctl.infra.hcloud import ops
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.converge import create_server, ensure_firewall, ensure_ips
from fatctl.infra.hcloud.keys import ensure_fleet_keys
from fatctl.infra.hcloud.observe import Bound, observe


def replacement_box(box: DesiredBox, op_id: int) -> DesiredBox:
    """The agent's box as its replacement: `-mv<op>` names, the `op` label."""
    suffix = f"-mv{op_id}"
    return replace(
        box,
        server_name=f"{box.server_name}{suffix}",
        ipv4_name=f"{box.server_name}{suffix}-ipv4",
        ipv6_name=f"{box.server_name}{suffix}-ipv6",
        labels={**box.labels, REPLACEMENT_LABEL: str(op_id)},
    )


def replacement_bound(h: Hcloud, name: str, op_id: int) -> Bound:
    """The replacement's server and IPs as they exist now (none before the first run)."""
    selector = ownership_selector(name)
    selector = replace(selector, equal=(*selector.equal, (REPLACEMENT_LABEL, str(op_id))))
    c = h.client
    servers = h.listed("list servers", c.servers.get_all, selector)
    ips = h.listed("list primary IPs", c.primary_ips.get_all, selector)
    return Bound(server=servers[0] if servers else None, ips={str(ip.type): ip for ip in ips})


def reserve(h: Hcloud, box: DesiredBox, op_id: int, emit: ChangeSink) -> dict[str, Any]:
    """The replacement's two primary IPs in its location, created or adopted."""
    moved = replacement_box(box, op_id)
    return ensure_ips(h, moved, replacement_bound(h, box.server_name, op_id), emit)


def create(
    h: Hcloud, box: DesiredBox, op_id: int, user_data: str, emit: ChangeSink
) -> tuple[Any, dict[str, Any], Any]:
    """The replacement server (adopted when an earlier run made it), its IPs and firewall."""
    moved = replacement_box(box, op_id)
    found = replacement_bound(h, box.server_name, op_id)
    _, bound = observe(h, box.server_name)
    keys = ensure_fleet_keys(h, box.keys, bound.keys, emit)
    firewall = ensure_firewall(h, box, bound, emit)  # not bound to a location: shared
    ips = ensure_ips(h, moved, found, emit)
    server = found.server
    if server is None:
        server = create_server(h, moved, keys, firewall, ips, user_data)
        emit(ResourceChange("server", moved.server_name, "create", f"for {box.server_name}"))
    if box.backups:
        ops.set_backups(h, server, True)
    ops.set_protection(h, server, True)
    ops.set_rdns(h, server, ips, {}, box.rdns)
    return server, ips, firewall


def retire(h: Hcloud, name: str, keep_server_id: str, emit: ChangeSink) -> None:
    """The old server deleted and its primary IPs released; the firewall, the kept server
    and anything assigned to it stay. Refused, with nothing deleted, when the kept server
    does not exist: the old box would then be the agent's only one (a move given up halfway
    and then rerun)."""
    mine = h.listed("list servers", h.client.servers.get_all, ownership_selector(name))
    if keep_server_id not in {str(s.id) for s in mine}:
        raise StateError(f"agent {name}'s new server {keep_server_id} is gone: its old server "
                         "is kept (nothing retired)")  # fmt: skip
    _, bound = observe(h, name)
    server = bound.server
    if server is not None and str(server.id) != keep_server_id:
        _delete_server(h, server, "retired by move", emit)
    for ip in bound.ips.values():
        if str(ip.assignee_id or "") != keep_server_id:
            _release_ip(h, ip, "released by move", emit)


def discard(h: Hcloud, name: str, op_id: int, emit: ChangeSink) -> None:
    """The replacement of move `op_id` deleted with its primary IPs (the move given up); the
    agent's own box kept, its delete protection set again (a move killed inside `retire` may
    have lifted it just before the delete)."""
    found = replacement_bound(h, name, op_id)
    if found.server is not None:
        # First: Hetzner refuses to delete a primary IP still assigned to a server.
        _delete_server(h, found.server, "move abandoned", emit)
    for ip in found.ips.values():
        _release_ip(h, ip, "move abandoned", emit)
    _, bound = observe(h, name)
    if bound.server is not None:
        ops.set_protection(h, bound.server, True)


def _delete_server(h: Hcloud, server: Any, why: str, emit: ChangeSink) -> None:
    ops.set_protection(h, server, False)
    ops.act(h, f"delete server {server.name}", server.delete)
    emit(ResourceChange("server", server.name, "delete", why))


def _release_ip(h: Hcloud, ip: Any, why: str, emit: ChangeSink) -> None:
    ops.delete_primary_ip(h, ip)
    emit(ResourceChange("primary_ip", ip.name, "delete", why))


def promote(h: Hcloud, box: DesiredBox, op_id: int, emit: ChangeSink) -> None:
    """The replacement's server and IPs take the agent's names and labels (one PUT each)."""
    found = replacement_bound(h, box.server_name, op_id)
    if found.server is not None:
        update = partial(found.server.update, name=box.server_name, labels=box.labels)
        h.call("promote server", update)
        emit(ResourceChange("server", box.server_name, "update", "promoted"))
    for family, ip in found.ips.items():
        name = box.ipv4_name if family == "ipv4" else box.ipv6_name
        h.call("promote primary IP", partial(ip.update, name=name, labels=box.labels))
        emit(ResourceChange("primary_ip", name, "update", "promoted"))
