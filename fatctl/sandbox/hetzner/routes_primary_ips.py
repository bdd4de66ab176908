"""`/primary_ips`: create (assigned to a server or unassigned in a location), list, get,
update, delete, and the assign/unassign/protection/reverse-DNS actions. As on Hetzner,
assigning and unassigning need the server powered off, and a protected IP is not deleted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

from fatctl.sandbox.apiemu.store import now_iso
from fatctl.sandbox.hetzner import catalog, listing
from fatctl.sandbox.hetzner import validate as v
from fatctl.sandbox.hetzner.actions import ActionRunner
from fatctl.sandbox.hetzner.errors import ApiError, invalid, not_found
from fatctl.sandbox.hetzner.state import HetznerState, default_ptr, ip_belongs
from fatctl.sandbox.hetzner.views import primary_ip_view


def _slot(ip: dict[str, Any]) -> str:
    return "ipv4_id" if ip["type"] == "ipv4" else "ipv6_id"


def _assign(state: HetznerState, ip: dict[str, Any], server_id: Any) -> dict[str, Any]:
    server = state.get("server", server_id)
    if ip["assignee_id"] is not None:
        raise ApiError("primary_ip_already_assigned", "primary IP is already assigned")
    if server[_slot(ip)] is not None:
        raise ApiError(f"server_has_{ip['type']}", f"server already has an {ip['type']} address")
    if server["location"] != ip["location"]:
        raise invalid("assignee_id", "server is in another location")
    if server["status"] != "off" and server["status"] != "initializing":
        raise ApiError("server_not_stopped", "server must be powered off")
    state.store.put("server", {**server, _slot(ip): ip["id"]})
    return {**ip, "assignee_id": server["id"]}


def _unassign(state: HetznerState, ip: dict[str, Any]) -> dict[str, Any]:
    if ip["assignee_id"] is None:
        return ip
    server = state.store.get("server", ip["assignee_id"])
    if server is not None:
        if server["status"] != "off":
            raise ApiError("server_not_stopped", "server must be powered off")
        state.store.put("server", {**server, _slot(ip): None})
    return {**ip, "assignee_id": None}


def _create(state: HetznerState, runner: ActionRunner, data: dict[str, Any]) -> dict:
    name = v.required(data, "name")
    ip_type = v.required(data, "type")
    if ip_type not in ("ipv4", "ipv6"):
        raise invalid("type", "must be ipv4 or ipv6")
    assignee = data.get("assignee_id")
    # no `datacenter` fallback: the API removed it on 1 July 2026 (see views.primary_ip_view)
    where = data.get("location")
    if assignee is None and where is None:
        raise invalid("location", "location is required for an unassigned primary IP")
    with state.store.tx():
        state.require_unique_name("primary_ip", name)
        if assignee is not None:
            where = state.get("server", assignee)["location"]
        location = catalog.location(str(where))
        if location is None:
            raise invalid("location", "location not found")
        ip_id = state.new_id("primary_ip")
        address = state.allocate_ip(ip_type)
        ip = {
            "id": ip_id,
            "name": name,
            "ip": address,
            "type": ip_type,
            "blocked": False,
            "dns_ptr": [{"ip": address, "dns_ptr": default_ptr(address)}]
            if ip_type == "ipv4"
            else [],
            "protection": {"delete": False},
            "labels": v.labels(data),
            "created": now_iso(),
            "assignee_id": None,
            "location": location["name"],
            "auto_delete": v.optional(data, "auto_delete", bool, False),
        }
        action = None
        if assignee is not None:
            ip = _assign(state, ip, assignee)
            action = runner.submit("assign_primary_ip", _res(ip))[0]
        state.store.put("primary_ip", ip)
        # the response's `action` is optional but, when present, an object (never null)
        return {"primary_ip": primary_ip_view(ip), **({"action": action} if action else {})}


def _res(ip: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": ip["id"], "type": "primary_ip"}]


def _act(state: HetznerState, runner: ActionRunner, ip: dict, verb: str, data: dict) -> dict:
    if verb == "assign":
        ip = _assign(state, ip, v.required(data, "assignee_id", int))
    elif verb == "unassign":
        ip = _unassign(state, ip)
    elif verb == "change_protection":
        ip["protection"] = {"delete": v.optional(data, "delete", bool, ip["protection"]["delete"])}
    elif verb == "change_dns_ptr":
        address = v.required(data, "ip")
        if not ip_belongs(ip, address):
            raise invalid("ip", "ip does not belong to the primary IP")
        ptr = data.get("dns_ptr")
        rest = [p for p in ip["dns_ptr"] if p["ip"] != address]
        ip["dns_ptr"] = rest + ([{"ip": address, "dns_ptr": ptr}] if ptr else [])
    else:
        raise not_found("action")
    state.store.put("primary_ip", ip)
    command = {"assign": "assign_primary_ip", "unassign": "unassign_primary_ip"}.get(verb, verb)
    return {"action": runner.submit(command, _res(ip))[0]}


def _create_routes(api: APIRouter, state: HetznerState, runner: ActionRunner) -> None:

    @api.get("/primary_ips")
    def list_ips(request: Request) -> dict[str, Any]:
        items = [primary_ip_view(ip) for ip in state.store.all("primary_ip")]
        if ip := request.query_params.get("ip"):
            items = [i for i in items if i["ip"] == ip]
        sorts = request.query_params.getlist("sort")
        return listing.list_response("primary_ips", items, request.query_params, sorts)

    @api.post("/primary_ips", status_code=201)
    def create_ip(payload: Any = Body(None)) -> dict[str, Any]:  # noqa: B008
        return _create(state, runner, v.body(payload))

    @api.get("/primary_ips/{ip_id}")
    def get_ip(ip_id: str) -> dict[str, Any]:
        return {"primary_ip": primary_ip_view(state.get("primary_ip", ip_id))}


def _change_routes(api: APIRouter, state: HetznerState, runner: ActionRunner) -> None:
    @api.put("/primary_ips/{ip_id}")
    def update_ip(ip_id: str, payload: Any = Body(None)) -> dict[str, Any]:  # noqa: B008
        data = v.body(payload)
        with state.store.tx():
            ip = state.get("primary_ip", ip_id)
            state.rename_relabel("primary_ip", ip, data)
            ip["auto_delete"] = v.optional(data, "auto_delete", bool, ip["auto_delete"])
            state.store.put("primary_ip", ip)
            return {"primary_ip": primary_ip_view(ip)}

    @api.delete("/primary_ips/{ip_id}", status_code=204)
    def delete_ip(ip_id: str) -> None:
        with state.store.tx():
            ip = state.get("primary_ip", ip_id)
            if ip["protection"]["delete"]:
                raise ApiError("protected", "primary IP is protected against deletion")
            state.require_unlocked("primary_ip", ip["id"])
            # Hetzner's reference, Delete a Primary IP: "If assigned to a Server the Primary IP
            # will be unassigned automatically until 1 May 2026. After this date, the Primary
            # IP needs to be unassigned before it can be deleted" (422 `must_be_unassigned`).
            if ip["assignee_id"] is not None:
                raise ApiError("must_be_unassigned", "primary IP is still assigned to a resource")
            state.store.delete("primary_ip", ip["id"])

    @api.post("/primary_ips/{ip_id}/actions/{verb}", status_code=201)
    def ip_verb(ip_id: str, verb: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        with state.store.tx():
            ip = state.get("primary_ip", ip_id)
            state.require_unlocked("primary_ip", ip["id"])
            return _act(state, runner, ip, verb, v.body(payload))


def router(state: HetznerState, runner: ActionRunner) -> APIRouter:
    api = APIRouter()
    _create_routes(api, state, runner)
    _change_routes(api, state, runner)
    return api
