"""Read what exists at Hetzner for one agent, by ownership labels, into plain `Observed` data
(plus the SDK objects the engine needs to act on, which never leave the hcloud modules)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from fatctl.errors import CloudError
from fatctl.infra.desired import ownership_selector
from fatctl.infra.engine import REPLACEMENT_LABEL
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.keys import list_keys
from fatctl.infra.plan import Observed, RuleKey, SeenFirewall, SeenIp, SeenKey, SeenServer


@dataclass
class Bound:
    """The SDK objects behind an `Observed` snapshot (hcloud-only)."""

    server: Any = None
    firewall: Any = None
    keys: dict[str, Any] = field(default_factory=dict)  # the project's keys, by fingerprint
    ips: dict[str, Any] = field(default_factory=dict)


def box_ipv6(network: str) -> str:
    """Hetzner gives a /64; the box uses its first address (`::1`)."""
    if "/" not in network:
        return network
    return str(ipaddress.IPv6Network(network, strict=False)[1])


def _ptr(ip: Any) -> str:
    for entry in ip.dns_ptr or []:
        value = entry.get("dns_ptr") if isinstance(entry, dict) else getattr(entry, "dns_ptr", "")
        address = entry.get("ip") if isinstance(entry, dict) else getattr(entry, "ip", "")
        if ip.type == "ipv4" or address != ip.ip:
            return str(value or "")
    return ""


def seen_ip(ip: Any) -> SeenIp:
    return SeenIp(
        id=str(ip.id),
        name=ip.name or "",
        family=ip.type,
        ip=ip.ip,
        location=ip.location.name if ip.location else "",
        labels=dict(ip.labels or {}),
        auto_delete=bool(ip.auto_delete),
        delete_protection=bool((ip.protection or {}).get("delete")),
        assignee_id=str(ip.assignee_id or ""),
        ptr=_ptr(ip),
    )


def rule_keys(rules: Any) -> frozenset[RuleKey]:
    return frozenset(
        (r.direction, r.protocol, r.port, tuple(sorted(r.source_ips or [])), r.description or "")
        for r in rules or []
    )


def seen_firewall(fw: Any) -> SeenFirewall:
    applied = frozenset(
        str(res.server.id) for res in fw.applied_to or [] if res.type == "server" and res.server
    )
    return SeenFirewall(str(fw.id), fw.name, dict(fw.labels or {}), rule_keys(fw.rules), applied)


def seen_server(srv: Any) -> SeenServer:
    net = srv.public_net
    v4, v6 = (net.primary_ipv4, net.primary_ipv6) if net else (None, None)
    protection = srv.protection or {}
    image = srv.image
    return SeenServer(
        id=str(srv.id),
        name=srv.name,
        server_type=srv.server_type.name,
        image=(image.name or str(image.id)) if image else "",
        location=srv.location.name if srv.location else "",
        status=srv.status,
        labels=dict(srv.labels or {}),
        backups=bool(srv.backup_window),
        delete_protection=bool(protection.get("delete")),
        rebuild_protection=bool(protection.get("rebuild")),
        ipv4_id=str(v4.id) if v4 else "",
        ipv6_id=str(v6.id) if v6 else "",
        ipv4=net.ipv4.ip if net and net.ipv4 else "",
        ipv6=box_ipv6(net.ipv6.ip) if net and net.ipv6 else "",
    )


def doubled(name: str, servers: list[Any], fws: list[Any], ips: list[Any]) -> str:
    """Why an agent's resources cannot be told apart (two servers, firewalls or primary IPs of
    one family all labelled as its own), or "" when there is at most one of each."""
    groups = [("servers", servers), ("firewalls", fws)]
    for family, kind in (("ipv4", "primary IPv4s"), ("ipv6", "primary IPv6s")):
        groups.append((kind, [ip for ip in ips if ip.type == family]))
    for kind, found in groups:
        if len(found) > 1:
            ids = ", ".join(str(x.id) for x in found)
            return f"agent {name} has {len(found)} {kind} ({ids}); resolve by hand"
    return ""


def not_replacements(found: list[Any]) -> list[Any]:
    return [x for x in found if REPLACEMENT_LABEL not in (x.labels or {})]


def observe(h: Hcloud, name: str) -> tuple[Observed, Bound]:
    """Everything labelled as this agent's; at most one server, firewall and IP per family.
    SSH keys are fleet-level: all of the project's are read, to be matched by fingerprint.
    A move's replacement (labelled `op=<id>` until promoted) is not the agent's box yet."""
    selector = ownership_selector(name)
    c = h.client
    servers = not_replacements(h.listed("list servers", c.servers.get_all, selector))
    fws = h.listed("list firewalls", c.firewalls.get_all, selector)
    keys = list_keys(h)
    ips = not_replacements(h.listed("list primary IPs", c.primary_ips.get_all, selector))
    problem = doubled(name, servers, fws, ips)
    if problem:
        raise CloudError(problem, code="duplicate")
    bound = Bound(
        server=servers[0] if servers else None,
        firewall=fws[0] if fws else None,
        keys=keys,
        ips={str(ip.type): ip for ip in ips},
    )
    observed = Observed(
        server=seen_server(bound.server) if bound.server else None,
        keys={
            fp: SeenKey(str(k.id), str(k.name), k.public_key, dict(k.labels or {}))
            for fp, k in bound.keys.items()
        },
        firewall=seen_firewall(bound.firewall) if bound.firewall else None,
        ips={family: seen_ip(ip) for family, ip in bound.ips.items()},
    )
    return observed, bound
