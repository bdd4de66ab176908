"""The whole fleet as Hetzner sees it, for `fatctl reconcile`: every server, primary IP and
firewall labelled `managed-by=fatctl`, in one paged listing each (not one lookup per agent), as
plain `Seen*` data; and the repairs reconcile makes at Hetzner by itself: relabelling a server,
deleting a firewall that no agent owns and that protects nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from hcloud.firewalls import Firewall
from hcloud.servers import Server

from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.observe import seen_firewall, seen_ip, seen_server
from fatctl.infra.plan import SeenFirewall, SeenIp, SeenServer
from fatctl.infra.selector import Selector, managed

OWNED = managed()


@dataclass(frozen=True)
class Inventory:
    servers: tuple[SeenServer, ...]
    ips: tuple[SeenIp, ...]
    firewalls: tuple[SeenFirewall, ...]


def fleet_inventory(h: Hcloud, selector: Selector = OWNED) -> Inventory:
    """Three listings (the SDK pages them, 50 per request): servers, primary IPs, firewalls."""
    c = h.client
    servers = h.listed("list servers", c.servers.get_all, selector)
    ips = h.listed("list primary IPs", c.primary_ips.get_all, selector)
    fws = h.listed("list firewalls", c.firewalls.get_all, selector)
    return Inventory(
        tuple(seen_server(s) for s in servers),
        tuple(seen_ip(i) for i in ips),
        tuple(seen_firewall(f) for f in fws),
    )


def relabel_server(h: Hcloud, server_id: str, labels: Mapping[str, str]) -> None:
    """Replace the server's labels (Hetzner sets the whole map): one call, no lookup."""
    update = partial(h.client.servers.update, Server(id=int(server_id)), labels=dict(labels))
    h.call(f"label server {server_id}", update)


def delete_firewall(h: Hcloud, firewall_id: str) -> None:
    """Delete a firewall (Hetzner refuses while it is applied to a server: `resource_in_use`)."""
    h.call(
        f"delete firewall {firewall_id}",
        partial(h.client.firewalls.delete, Firewall(id=int(firewall_id))),
    )
