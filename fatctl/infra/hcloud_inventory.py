"""The whole fleet as Hetzner sees it, for `fatctl reconcile`: every server and primary IP
labelled `managed-by=fatctl`, in one paged listing each (not one lookup per agent), as plain
`SeenServer`/`SeenIp` data; and the one repair reconcile makes at Hetzner by itself, relabelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from hcloud.servers import Server

from fatctl.infra.hcloud_client import Hcloud
from fatctl.infra.hcloud_observe import seen_ip, seen_server
from fatctl.infra.plan import SeenIp, SeenServer

OWNED = "managed-by=fatctl"


@dataclass(frozen=True)
class Inventory:
    servers: tuple[SeenServer, ...]
    ips: tuple[SeenIp, ...]


def fleet_inventory(h: Hcloud, selector: str = OWNED) -> Inventory:
    """Two listings (the SDK pages them, 50 per request): servers, then primary IPs."""
    c = h.client
    servers = h.call("list servers", lambda: c.servers.get_all(label_selector=selector))
    ips = h.call("list primary IPs", lambda: c.primary_ips.get_all(label_selector=selector))
    return Inventory(tuple(seen_server(s) for s in servers), tuple(seen_ip(i) for i in ips))


def relabel_server(h: Hcloud, server_id: str, labels: Mapping[str, str]) -> None:
    """Replace the server's labels (Hetzner sets the whole map): one call, no lookup."""
    update = partial(h.client.servers.update, Server(id=int(server_id)), labels=dict(labels))
    h.call(f"label server {server_id}", update)
