"""Adopt-or-create for each resource of an agent's box with the hcloud SDK, reporting every
resource as created, updated or unchanged. Lookups go by ownership labels and names, so a rerun
(or a run after a crash) adopts what exists instead of creating a duplicate.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from hcloud.firewalls import FirewallResource, FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import ServerCreatePublicNetwork

from fatctl.domain import ChangeSink, ResourceChange
from fatctl.infra.desired import DesiredBox
from fatctl.infra.hcloud import recover
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.observe import Bound, rule_keys
from fatctl.infra.plan import rule_key


def _report(emit: ChangeSink, kind: str, name: str, action: str, detail: str = "") -> None:
    emit(ResourceChange(kind=kind, name=name, action=action, detail=detail))


def _sdk_rules(box: DesiredBox) -> list[FirewallRule]:
    return [
        FirewallRule(
            direction=r.direction,
            protocol=r.protocol,
            port=r.port,
            source_ips=list(r.source_ips),
            description=r.description,
        )
        for r in box.rules
    ]


def ensure_firewall(h: Hcloud, box: DesiredBox, bound: Bound, emit: ChangeSink) -> Any:
    fw = bound.firewall
    if fw is None:
        # The SDK annotates `labels` as str but sends what it is given; the API wants a map.
        labels: Any = box.labels
        create = partial(h.client.firewalls.create, box.firewall_name, _sdk_rules(box), labels)
        resp = h.call("create firewall", create, recover.firewall(h, box))
        for action in resp.actions or []:
            h.wait("create firewall", action)
        _report(emit, "firewall", box.firewall_name, "create")
        return resp.firewall
    diffs = []
    if rule_keys(fw.rules) != frozenset(rule_key(r) for r in box.rules):
        for action in h.call("set firewall rules", lambda: fw.set_rules(_sdk_rules(box))):
            h.wait("set firewall rules", action)
        diffs.append("rules")
    if dict(fw.labels or {}) != box.labels:
        h.call("label firewall", lambda: fw.update(labels=box.labels))
        diffs.append("labels")
    _report(emit, "firewall", box.firewall_name, "update" if diffs else "same", ",".join(diffs))
    return fw


def _keep_ip(h: Hcloud, ip: Any, box: DesiredBox) -> None:
    """Delete protection on, auto-delete off, our labels: the IP must outlive any server."""
    if not (ip.protection or {}).get("delete"):
        h.wait(
            "protect primary IP", h.call("protect primary IP", partial(ip.change_protection, True))
        )
    # auto-delete is a field of the IP (`PUT /primary_ips/{id}`), not an action: the SDK has no
    # `change_auto_delete`, so it is set in the same update as the labels (one call, no wait)
    changes: dict[str, Any] = {}
    if ip.auto_delete:
        changes["auto_delete"] = False
    if dict(ip.labels or {}) != box.labels:
        changes["labels"] = box.labels
    if changes:
        h.call("keep primary IP", partial(ip.update, **changes))


def ensure_ips(h: Hcloud, box: DesiredBox, bound: Bound, emit: ChangeSink) -> dict[str, Any]:
    out = {}
    for family, name in (("ipv4", box.ipv4_name), ("ipv6", box.ipv6_name)):
        ip = bound.ips.get(family)
        if ip is None:
            create = partial(
                h.client.primary_ips.create,
                type=family,
                name=name,
                location=Location(name=box.location),
                # no assignee_type: it only goes with an assignee_id (the SDK drops it alone)
                auto_delete=False,
                labels=box.labels,
            )
            resp = h.call(f"create primary {family}", create, recover.primary_ip(h, box, name))
            h.wait(f"create primary {family}", resp)
            ip = resp.primary_ip
            _report(emit, "primary_ip", name, "create")
        else:
            _report(emit, "primary_ip", name, "same")
        _keep_ip(h, ip, box)
        out[family] = ip
    return out


def create_server(
    h: Hcloud,
    box: DesiredBox,
    keys: list[Any],
    fw: Any,
    ips: dict[str, Any],
    user_data: str,
    *,
    read_back: bool = True,
) -> Any:
    """The new server, once created and started; `read_back=False` spares the GET when the
    caller needs only its id and methods (the create response's copy predates the start)."""
    resp = h.call(
        "create server",
        lambda: h.client.servers.create(
            name=box.server_name,
            server_type=ServerType(name=box.server_type),
            image=Image(name=box.image),
            ssh_keys=keys,
            firewalls=[fw],
            user_data=user_data or None,
            labels=box.labels,
            location=Location(name=box.location),
            public_net=ServerCreatePublicNetwork(ipv4=ips["ipv4"], ipv6=ips["ipv6"]),
        ),
        recover.server(h, box),
    )
    h.wait("create server", resp)
    for action in resp.next_actions or []:
        h.wait("create server", action)
    if not read_back:
        return resp.server
    return h.call("read server", partial(h.client.servers.get_by_id, int(resp.server.id or 0)))


def attach_firewall(h: Hcloud, fw: Any, server: Any) -> bool:
    applied = {str(r.server.id) for r in fw.applied_to or [] if r.type == "server" and r.server}
    if str(server.id) in applied:
        return False
    resources = [FirewallResource(type="server", server=server)]
    for action in h.call("apply firewall", lambda: fw.apply_to_resources(resources)):
        h.wait("apply firewall", action)
    return True
