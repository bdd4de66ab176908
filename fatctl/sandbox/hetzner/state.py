"""The Hetzner emulator's state: persisted documents, lookups that raise the API's errors, and
address allocation.

Addresses: IPv4 primary IPs come from 10.77.0.0/16 (from .0.2 up; .0.0 is the network and .0.1
the sandbox gateway). IPv6: Hetzner gives each server a /64 ("2001:db8::/64" is the document's
example of a primary IP's `ip`), so each IPv6 primary IP is the /64 `fd77:0:0:N::/64` (N >= 1)
of the sandbox's fd77::/48, and the box's address is its `::1` (as on Hetzner, where the server
uses <network>::1): `ipaddress.ip_network(ip)[1]`. The /64 with N = 0 is never handed out: it
holds the sandbox gateway fd77::1 (like 10.77.0.1 for IPv4) and the test fixtures' boxes.
"""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path
from typing import Any

from fatctl.sandbox.apiemu.faults import FaultState
from fatctl.sandbox.apiemu.store import Store
from fatctl.sandbox.driver import BoxDriver, NullBoxDriver
from fatctl.sandbox.hetzner import validate
from fatctl.sandbox.hetzner.errors import ApiError, not_found

IPV4_NET = ipaddress.IPv4Network("10.77.0.0/16")
IPV6_NET = ipaddress.IPv6Network("fd77::/48")

# first ids per kind, so ids of different kinds never collide (helps reading logs)
_ID_BASE = {
    "server": 1_000_001,
    "primary_ip": 2_000_001,
    "firewall": 3_000_001,
    "ssh_key": 4_000_001,
    "image": 5_000_001,
    "action": 9_000_001,
}


class HetznerState:
    def __init__(
        self, state_dir: Path, driver: BoxDriver | None, faults: FaultState, action_delay: float
    ) -> None:
        self.store = Store(state_dir / "hetzner.sqlite3")
        self.driver: BoxDriver = driver or NullBoxDriver()
        self.faults = faults
        self.default_action_delay = action_delay
        self.shutting_down = threading.Event()

    def action_delay(self, command: str | None = None) -> float:
        config = self.faults.config
        if command in config.action_delays:
            return float(config.action_delays[command])
        return self.default_action_delay if config.action_delay is None else config.action_delay

    def new_id(self, kind: str) -> int:
        return self.store.next_id(f"id:{kind}", _ID_BASE[kind])

    def get(self, kind: str, obj_id: int | str) -> dict[str, Any]:
        try:
            doc = self.store.get(kind, int(obj_id))
        except ValueError:
            doc = None
        if doc is None:
            raise not_found(kind)
        return doc

    def by_name(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.store.all(kind) if o.get("name") == name), None)

    def require_unique_name(self, kind: str, name: str, own_id: int | None = None) -> None:
        other = self.by_name(kind, name)
        if other is not None and other["id"] != own_id:
            raise ApiError(
                "uniqueness_error",
                "name is already used",
                {"fields": [{"name": "name", "messages": ["is already used"]}]},
            )

    def rename_relabel(
        self, kind: str, doc: dict[str, Any], data: dict[str, Any], hostname: bool = False
    ) -> dict[str, Any]:
        """The `PUT` of every resource: a new unique name and/or a new label set."""
        if "name" in data:
            name = validate.required(data, "name")
            doc["name"] = validate.hostname(name) if hostname else name
            self.require_unique_name(kind, name, doc["id"])
        if "labels" in data:
            doc["labels"] = validate.labels(data)
        return doc

    def pending_for(self, kind: str, obj_id: int) -> list[dict[str, Any]]:
        """Running actions that hold a resource (the API's `locked`)."""
        return [
            p for p in self.store.all("pending") if {"id": obj_id, "type": kind} in p["resources"]
        ]

    def require_unlocked(self, kind: str, obj_id: int) -> None:
        if self.pending_for(kind, obj_id):
            raise ApiError("locked", f"{kind} {obj_id} is locked by a running action")

    def allocate_ip(self, ip_type: str) -> str:
        if ip_type == "ipv4":
            n = self.store.next_id("ipv4", 2)
            if n >= IPV4_NET.num_addresses - 1:
                raise ApiError("resource_unavailable", "sandbox IPv4 range exhausted")
            return str(IPV4_NET[n])
        n = self.store.next_id("ipv6", 1)
        if n > 0xFFFF:
            raise ApiError("resource_unavailable", "sandbox IPv6 range exhausted")
        return str(ipaddress.IPv6Network((int(IPV6_NET.network_address) + (n << 64), 64)))


def box_ipv6(network: str) -> str:
    """The address a server uses inside its IPv6 primary IP network."""
    return str(ipaddress.IPv6Network(network)[1])


def ip_belongs(primary: dict[str, Any], address: str) -> bool:
    """Whether `address` is the primary IP's address (IPv4) or inside its network (IPv6)."""
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(primary["ip"])
    except ValueError:
        return False


def default_ptr(ip: str) -> str:
    return "static." + ".".join(reversed(ip.split("."))) + ".clients.your-server.de"
