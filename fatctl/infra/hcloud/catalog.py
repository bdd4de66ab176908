"""Read-only fleet-wide lookups at Hetzner for `fatctl cost`: the price list document and what
every fatctl-managed server and primary IP is (type, location, backups), in three calls
however large the fleet (list calls page through 50 at a time inside the SDK).

One of the hcloud modules: SDK objects never leave it; callers get `FleetItem`s and dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.observe import seen_server
from fatctl.infra.selector import managed

FLEET_SELECTOR = managed("agent")


@dataclass(frozen=True)
class FleetItem:
    """One agent's billable things as Hetzner sees them."""

    agent: str
    server_type: str = ""  # "" when the agent has no server (its IPs are still billed)
    location: str = ""
    backups: bool = False
    ipv4: bool = False
    ipv6: bool = False


def pricing_document(h: Hcloud) -> dict[str, Any]:
    """The raw `GET /pricing` body, as Hetzner sends it (decimal strings kept as strings)."""
    return h.call("read the price list", lambda: h.client.request("GET", "/pricing"))


def fleet(h: Hcloud) -> dict[str, FleetItem]:
    """Every agent's server and primary IPs at Hetzner, by agent name."""
    servers = h.listed("list servers", h.client.servers.get_all, FLEET_SELECTOR)
    ips = h.listed("list primary IPs", h.client.primary_ips.get_all, FLEET_SELECTOR)
    found: dict[str, dict[str, Any]] = {}
    for srv in servers:
        seen = seen_server(srv)
        found.setdefault(seen.labels["agent"], {}).update(
            server_type=seen.server_type, location=seen.location, backups=seen.backups
        )
    for ip in ips:
        agent = dict(ip.labels or {})["agent"]
        entry = found.setdefault(agent, {})
        entry[str(ip.type)] = True
        if not entry.get("location"):
            entry["location"] = _ip_location(ip)
    return {agent: FleetItem(agent=agent, **fields) for agent, fields in found.items()}


def _ip_location(ip: Any) -> str:
    # A primary IP's place is its `location` (Hetzner removed `datacenter` on 1 July 2026, and
    # hcloud 2.16, fatctl's floor, reads `location`).
    return str(getattr(getattr(ip, "location", None), "name", "") or "")
