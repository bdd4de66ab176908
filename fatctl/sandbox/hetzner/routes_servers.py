"""`/servers`: create, list, get, update, delete, and the server's own action list."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Body, Request

from fatctl.sandbox.apiemu.store import now_iso
from fatctl.sandbox.hetzner import catalog, listing
from fatctl.sandbox.hetzner import validate as v
from fatctl.sandbox.hetzner.actions import ActionRunner
from fatctl.sandbox.hetzner.errors import ApiError, invalid
from fatctl.sandbox.hetzner.state import HetznerState, default_ptr
from fatctl.sandbox.hetzner.views import Snapshot, server_view

SERVER_STATUSES = {
    "initializing",
    "starting",
    "running",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
}


def resolve_image(state: HetznerState, ref: int | str, arch: str) -> dict[str, Any]:
    candidates = catalog.system_images() + state.store.all("image")
    for image in candidates:
        by_id = isinstance(ref, int) or str(ref).isdigit()
        if by_id and image["id"] == int(ref):
            return image
        if not by_id and image["name"] == ref and image["architecture"] == arch:
            return image
    raise invalid("image", "image not found")


def _placement(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    stype = catalog.server_type(
        str(v.ref(v.required(data, "server_type", (str, int)), "server_type"))
    )
    if stype is None:
        raise invalid("server_type", "server type not found")
    # `datacenter` left the API on 1 July 2026 ("We removed the datacenter property in the
    # request body and response of Servers and Primary IPs"); Hetzner picks a location when
    # none is given, the emulator fsn1
    where = data.get("location") or "fsn1"
    location = catalog.location(str(v.ref(where, "location")))
    if location is None:
        raise invalid("location", "location not found")
    if location["name"] not in {loc["name"] for loc in stype["locations"]}:
        raise ApiError(
            "invalid_input", f"server type {stype['name']} is not available in {location['name']}"
        )
    return stype, location


def _ssh_keys(state: HetznerState, data: dict[str, Any]) -> list[int]:
    ids = []
    for ref in v.optional(data, "ssh_keys", list, []):
        key = next((k for k in state.store.all("ssh_key") if ref in (k["id"], k["name"])), None)
        if key is None:
            raise invalid("ssh_keys", f"ssh key {ref!r} not found")
        ids.append(key["id"])
    return ids


def _firewalls(state: HetznerState, data: dict[str, Any]) -> list[int]:
    ids = []
    for item in v.optional(data, "firewalls", list, []):
        fw_id = item.get("firewall") if isinstance(item, dict) else None
        if not isinstance(fw_id, int) or state.store.get("firewall", fw_id) is None:
            raise invalid("firewalls", f"firewall {fw_id!r} not found")
        ids.append(fw_id)
    return ids


def _primary_ip(
    state: HetznerState, net: dict[str, Any], family: str, location: str, server_id: int
) -> int | None:
    """Attach the given primary IP, or create an auto-deleted one, or none if disabled."""
    enabled = net.get(f"enable_{family}", True)
    given = net.get(family)
    if given is None and not enabled:
        return None
    if given is not None:
        ip = state.get("primary_ip", given)
        # the codes of POST /servers' "Operation specific errors"
        if ip["type"] != family:
            raise ApiError("primary_ip_version_mismatch", f"primary IP is not an {family}")
        if ip["assignee_id"] is not None:
            raise ApiError("primary_ip_assigned", "primary IP is already assigned to a server")
        if ip["location"] != location:
            raise ApiError("primary_ip_datacenter_mismatch", "primary IP is in another location")
        state.store.put("primary_ip", {**ip, "assignee_id": server_id})
        return int(ip["id"])
    ip_id = state.new_id("primary_ip")
    address = state.allocate_ip(family)
    ptr = [{"ip": address, "dns_ptr": default_ptr(address)}] if family == "ipv4" else []
    state.store.put(
        "primary_ip",
        {
            "id": ip_id,
            "name": f"primary_ip-{ip_id}",
            "ip": address,
            "type": family,
            "dns_ptr": ptr,
            "blocked": False,
            "protection": {"delete": False},
            "labels": {},
            "created": now_iso(),
            "assignee_id": server_id,
            "assignee_type": "server",
            "auto_delete": True,
            "location": location,
        },
    )
    return ip_id


def _server_doc(state: HetznerState, data: dict[str, Any]) -> dict[str, Any]:
    """The validated server document, before ids and addresses are allocated."""
    stype, location = _placement(data)
    ref = v.ref(v.required(data, "image", (str, int)), "image")
    return {
        "name": v.hostname(v.required(data, "name")),
        "status": "initializing",
        "created": now_iso(),
        "server_type": stype["name"],
        "location": location["name"],
        "image": resolve_image(state, ref, stype["architecture"])["id"],
        "labels": v.labels(data),
        "protection": {"delete": False, "rebuild": False},
        "rescue_enabled": False,
        "user_data": v.user_data(data),
    }


def _check_room(state: HetznerState, server_type: str, location: str) -> None:
    """A sold-out type or location (the `sold_out` fault knob) refuses the create as Hetzner
    does: `resource_unavailable` (412) or `placement_error` (422), nothing made."""
    sold_out = state.faults.config.sold_out
    for key in (f"{server_type}@{location}", f"{server_type}@*", f"*@{location}"):
        if code := sold_out.get(key):
            raise ApiError(code, f"server type {server_type} is unavailable in {location}")


def _apply_firewalls(state: HetznerState, fw_ids: list[int], server_id: int) -> None:
    for fw_id in fw_ids:
        fw = state.get("firewall", fw_id)
        fw["applied_to"].append({"type": "server", "server": {"id": server_id}})
        state.store.put("firewall", fw)


def _create(state: HetznerState, runner: ActionRunner, data: dict[str, Any]) -> dict:
    doc = _server_doc(state, data)
    _check_room(state, doc["server_type"], doc["location"])
    start = v.optional(data, "start_after_create", bool, True)
    net = v.optional(data, "public_net", dict, {})
    with state.store.tx():
        state.require_unique_name("server", doc["name"])
        doc["ssh_keys"], firewalls = _ssh_keys(state, data), _firewalls(state, data)
        doc["id"] = server_id = state.new_id("server")
        for family in ("ipv4", "ipv6"):
            doc[f"{family}_id"] = _primary_ip(state, net, family, doc["location"], server_id)
        state.store.put("server", doc)
        _apply_firewalls(state, firewalls, server_id)
        args = {"server_id": server_id, "start": start}
        actions = runner.submit(
            "create_server",
            [{"id": server_id, "type": "server"}],
            "create_server",
            args,
            ["start_server"] if start else [],
        )
        return {
            "server": server_view(state, doc),
            "action": actions[0],
            "next_actions": actions[1:],
            "root_password": None if doc["ssh_keys"] else secrets.token_urlsafe(12),
        }


def router(state: HetznerState, runner: ActionRunner) -> APIRouter:
    api = APIRouter()

    @api.get("/servers")
    def list_servers(request: Request) -> dict[str, Any]:
        items = state.store.all("server")
        wanted = request.query_params.getlist("status")
        if set(wanted) - SERVER_STATUSES:
            raise invalid("status", "unknown server status")
        if wanted:
            items = [s for s in items if s["status"] in wanted]
        sorts = request.query_params.getlist("sort")

        def render(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
            snap = Snapshot(state)
            return [server_view(state, doc, snap) for doc in page]

        return listing.list_response("servers", items, request.query_params, sorts, render)

    @api.post("/servers", status_code=201)
    def create_server(payload: Any = Body(None)) -> dict[str, Any]:  # noqa: B008
        return _create(state, runner, v.body(payload))

    @api.get("/servers/{server_id}")
    def get_server(server_id: str) -> dict[str, Any]:
        return {"server": server_view(state, state.get("server", server_id))}

    @api.put("/servers/{server_id}")
    def update_server(server_id: str, payload: Any = Body(None)) -> dict[str, Any]:  # noqa: B008
        data = v.body(payload)
        with state.store.tx():
            doc = state.get("server", server_id)
            state.rename_relabel("server", doc, data, hostname=True)
            state.store.put("server", doc)
            return {"server": server_view(state, doc)}

    @api.delete("/servers/{server_id}")
    def delete_server(server_id: str) -> dict[str, Any]:
        with state.store.tx():
            doc = state.get("server", server_id)
            if doc["protection"]["delete"]:
                raise ApiError("protected", "server is protected against deletion")
            state.require_unlocked("server", doc["id"])
            args = {"server_id": doc["id"], "previous": doc["status"]}
            state.store.put("server", {**doc, "status": "deleting"})
            resources = [{"id": doc["id"], "type": "server"}]
            return {"action": runner.submit("delete_server", resources, "delete_server", args)[0]}

    return api
