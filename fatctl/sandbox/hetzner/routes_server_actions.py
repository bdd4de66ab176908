"""`/servers/{id}/actions/*`: power, reboot, rebuild, type change, rescue, snapshot,
protection and reverse DNS. A server with a running action
answers `locked`, as the real API does."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Body

from fatctl.sandbox.apiemu.store import now_iso
from fatctl.sandbox.hetzner import catalog
from fatctl.sandbox.hetzner import validate as v
from fatctl.sandbox.hetzner.actions import ActionRunner
from fatctl.sandbox.hetzner.errors import ApiError, invalid, not_found
from fatctl.sandbox.hetzner.routes_servers import resolve_image
from fatctl.sandbox.hetzner.state import HetznerState, ip_belongs

# command name -> (action command, op, transitional status or None)
_POWER = {
    "poweron": ("start_server", "start_server", "starting"),
    "poweroff": ("stop_server", "stop_server", "stopping"),
    "shutdown": ("shutdown_server", "stop_server", "stopping"),
    "reboot": ("reboot_server", "reboot_server", None),
    "reset": ("reset_server", "reboot_server", None),
}


def _power(state: HetznerState, runner: ActionRunner, doc: dict, verb: str) -> dict:
    command, op, transitional = _POWER[verb]
    args = {"server_id": doc["id"], "previous": doc["status"]}
    if transitional:
        state.store.put("server", {**doc, "status": transitional})
    return {"action": runner.submit(command, _res(doc), op, args)[0]}


def _res(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": doc["id"], "type": "server"}]


def _rebuild(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
    if doc["protection"]["rebuild"]:
        raise ApiError("protected", "server is protected against rebuild")
    arch = (catalog.server_type(doc["server_type"]) or {})["architecture"]
    image = resolve_image(state, v.ref(v.required(data, "image", (str, int)), "image"), arch)
    state.store.put("server", {**doc, "image": image["id"], "status": "rebuilding"})
    args = {"server_id": doc["id"], "previous": doc["status"]}
    action = runner.submit("rebuild_server", _res(doc), "rebuild_server", args)[0]
    return {"action": action, "root_password": None}


def _change_type(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
    stype = catalog.server_type(
        str(v.ref(v.required(data, "server_type", (str, int)), "server_type"))
    )
    if stype is None:
        raise invalid("server_type", "server type not found")
    if doc["status"] != "off":
        raise ApiError("server_not_stopped", "server must be stopped to change its type")
    args = {"server_id": doc["id"], "server_type": stype["name"]}
    return {"action": runner.submit("change_server_type", _res(doc), "change_server_type", args)[0]}


def _create_image(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
    kind = v.optional(data, "type", str, "snapshot")
    if kind not in ("snapshot", "backup"):
        raise invalid("type", "must be snapshot or backup")
    base = resolve_image(state, doc["image"], "x86") if doc.get("image") else {}
    image = {
        "id": state.new_id("image"),
        "type": kind,
        "status": "creating",
        "name": None,
        "description": v.optional(data, "description", str, f"{doc['name']} snapshot"),
        "image_size": 1.5,
        "disk_size": (catalog.server_type(doc["server_type"]) or {})["disk"],
        "created": now_iso(),
        "created_from": {"id": doc["id"], "name": doc["name"]},
        "bound_to": None,
        "os_flavor": base.get("os_flavor", "unknown"),
        "os_version": base.get("os_version"),
        "rapid_deploy": False,
        "protection": {"delete": False},
        "deprecated": None,
        "deleted": None,
        "labels": v.labels(data),
        "architecture": base.get("architecture", "x86"),
    }
    state.store.put("image", image)
    action = runner.submit("create_image", _res(doc), "create_image", {"image_id": image["id"]})
    return {"image": image, "action": action[0]}


def _protection(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
    protection = dict(doc["protection"])
    for key in ("delete", "rebuild"):
        protection[key] = v.optional(data, key, bool, protection[key])
    state.store.put("server", {**doc, "protection": protection})
    return {"action": runner.submit("change_protection", _res(doc))[0]}


def _dns_ptr(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
    ip = v.required(data, "ip")
    ptr = data.get("dns_ptr")
    for ip_id in (doc["ipv4_id"], doc["ipv6_id"]):
        primary = state.store.get("primary_ip", ip_id) if ip_id else None
        if primary and ip_belongs(primary, ip):
            rest = [p for p in primary["dns_ptr"] if p["ip"] != ip]
            primary["dns_ptr"] = rest + ([{"ip": ip, "dns_ptr": ptr}] if ptr else [])
            state.store.put("primary_ip", primary)
            return {"action": runner.submit("change_dns_ptr", _res(doc))[0]}
    raise invalid("ip", "ip does not belong to the server")


def _rescue(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
    state.store.put("server", {**doc, "rescue_enabled": True})
    action = runner.submit("enable_rescue", _res(doc))[0]
    return {"action": action, "root_password": secrets.token_urlsafe(12)}


def _no_rescue(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
    state.store.put("server", {**doc, "rescue_enabled": False})
    return {"action": runner.submit("disable_rescue", _res(doc))[0]}


def _password(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
    action = runner.submit("reset_password", _res(doc))[0]
    return {"action": action, "root_password": secrets.token_urlsafe(12)}


def _backup(enabled: bool) -> Any:
    # Hetzner picks the backup window itself; a set window is how clients see backups are on.
    def handler(state: HetznerState, runner: ActionRunner, doc: dict, data: dict) -> dict:
        state.store.put("server", {**doc, "backup_window": "22-02" if enabled else None})
        verb = "enable_backup" if enabled else "disable_backup"
        return {"action": runner.submit(verb, _res(doc))[0]}

    return handler


_WITH_BODY = {
    "rebuild": _rebuild,
    "change_type": _change_type,
    "create_image": _create_image,
    "change_protection": _protection,
    "change_dns_ptr": _dns_ptr,
    "enable_rescue": _rescue,
    "disable_rescue": _no_rescue,
    "reset_password": _password,
    "enable_backup": _backup(True),
    "disable_backup": _backup(False),
}


def router(state: HetznerState, runner: ActionRunner) -> APIRouter:
    api = APIRouter()

    @api.post("/servers/{server_id}/actions/{verb}", status_code=201)
    def server_verb(server_id: str, verb: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        data = v.body(payload)
        if verb not in _POWER and verb not in _WITH_BODY:
            raise not_found("action")
        with state.store.tx():
            doc = state.get("server", server_id)
            state.require_unlocked("server", doc["id"])
            if doc["status"] == "deleting":
                raise ApiError("locked", "server is being deleted")
            if verb in _POWER:
                return _power(state, runner, doc, verb)
            return _WITH_BODY[verb](state, runner, doc, data)

    return api
