"""Render stored documents as the API's JSON. Servers keep references (type, location, image,
primary IP ids); their full shape, with the nested objects the SDK parses, is built here."""

from __future__ import annotations

from typing import Any

from fatctl.sandbox.hetzner import catalog
from fatctl.sandbox.hetzner.selectors import matches
from fatctl.sandbox.hetzner.state import HetznerState

_PRIVATE = ("user_data", "ssh_keys", "root_password")


def datacenter(location: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": location["id"],
        "name": f"{location['name']}-dc1",
        "description": f"{location['description']} virtual DC 1",
        "location": location,
        "server_types": {
            "supported": [t["id"] for t in catalog.SERVER_TYPES],
            "available": [t["id"] for t in catalog.SERVER_TYPES],
            "available_for_migration": [],
        },
    }


def primary_ip_view(doc: dict[str, Any]) -> dict[str, Any]:
    """Hetzner's changelog: "As of 1 August 2026, [...] the Primary IP `assignee_type`
    property [...] will return `unassigned` when the Primary IP is not assigned (when
    `assignee_id` is `null`)", and "We removed the datacenter property in the request body and
    response of Servers and Primary IPs" (after 1 July 2026): `location` only."""
    location = catalog.location(doc["location"]) or {}
    view = {k: v for k, v in doc.items() if k != "datacenter"}
    assignee_type = "unassigned" if doc.get("assignee_id") is None else "server"
    return {**view, "location": location, "assignee_type": assignee_type}


class Snapshot:
    """What server views need from other tables, read once per request (a page of 50
    servers would otherwise re-read every firewall and primary IP fifty times)."""

    def __init__(self, state: HetznerState) -> None:
        self.firewalls = state.store.all("firewall")
        self.ips = {ip["id"]: ip for ip in state.store.all("primary_ip")}
        self.images = {i["id"]: i for i in catalog.system_images() + state.store.all("image")}
        self.locked = {
            r["id"]
            for p in state.store.all("pending")
            for r in p["resources"]
            if r["type"] == "server"
        }


def _public_ipv4(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    ptr = doc["dns_ptr"][0]["dns_ptr"] if doc["dns_ptr"] else None
    return {"id": doc["id"], "ip": doc["ip"], "blocked": False, "dns_ptr": ptr}


def _public_ipv6(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {"id": doc["id"], "ip": doc["ip"], "blocked": False, "dns_ptr": doc["dns_ptr"]}


def firewalls_of(firewalls: list[dict[str, Any]], server: dict[str, Any]) -> list[int]:
    """Firewalls applied to a server directly or through a label selector."""
    ids = []
    for fw in firewalls:
        for target in fw["applied_to"]:
            direct = target["type"] == "server" and target["server"]["id"] == server["id"]
            by_label = target["type"] == "label_selector" and matches(
                target["label_selector"]["selector"], server["labels"]
            )
            if direct or by_label:
                ids.append(fw["id"])
                break
    return ids


def server_view(
    state: HetznerState, doc: dict[str, Any], snap: Snapshot | None = None
) -> dict[str, Any]:
    snap = snap or Snapshot(state)
    location = catalog.location(doc["location"]) or {}
    stype = catalog.server_type(doc["server_type"]) or {}
    view = {k: v for k, v in doc.items() if k not in _PRIVATE}
    fw_ids = firewalls_of(snap.firewalls, doc)
    view.update(
        public_net={
            "ipv4": _public_ipv4(snap.ips.get(doc["ipv4_id"])),
            "ipv6": _public_ipv6(snap.ips.get(doc["ipv6_id"])),
            "floating_ips": [],
            "firewalls": [{"id": f, "status": "applied"} for f in fw_ids],
        },
        server_type=stype,
        location=location,
        image=snap.images.get(doc.get("image")),
        iso=None,
        locked=doc["id"] in snap.locked,
        backup_window=doc.get("backup_window"),
        outgoing_traffic=0,
        ingoing_traffic=0,
        included_traffic=(stype.get("prices") or [{}])[0].get("included_traffic", 0),
        private_net=[],
        volumes=[],
        load_balancers=[],
        placement_group=None,
        primary_disk_size=stype.get("disk", 0),
    )
    view.pop("ipv4_id", None)
    view.pop("ipv6_id", None)
    return view
