"""The operations behind asynchronous actions: the box-driver call (`run`, may block) and the
state change committed when it is done (`finish`). Drivers must tolerate a repeated call: a job
interrupted by an emulator restart runs again."""

from __future__ import annotations

from typing import Any

from fatctl.sandbox.hetzner.actions import NOOP, Op
from fatctl.sandbox.hetzner.state import HetznerState, box_ipv6

Args = dict[str, Any]


def _server(state: HetznerState, args: Args) -> dict[str, Any] | None:
    return state.store.get("server", args["server_id"])


def _set_status(state: HetznerState, args: Args, status: str) -> None:
    doc = _server(state, args)
    if doc is not None:
        doc["status"] = status
        state.store.put("server", doc)


def _addresses(state: HetznerState, doc: dict[str, Any]) -> tuple[str, str]:
    v4 = state.store.get("primary_ip", doc["ipv4_id"]) if doc["ipv4_id"] else None
    v6 = state.store.get("primary_ip", doc["ipv6_id"]) if doc["ipv6_id"] else None
    return (v4["ip"] if v4 else "", box_ipv6(v6["ip"]) if v6 else "")


def _boot(state: HetznerState, args: Args) -> None:
    doc = _server(state, args)
    if doc is None:
        return
    ipv4, ipv6 = _addresses(state, doc)
    state.driver.create(doc["id"], doc["name"], ipv4, ipv6, doc.get("user_data") or "")
    if not args.get("start", True):
        state.driver.power_off(doc["id"])


def _created(state: HetznerState, args: Args, ok: bool) -> None:
    _set_status(state, args, "running" if ok and args.get("start", True) else "off")


def _rebuild(state: HetznerState, args: Args) -> None:
    state.driver.delete(args["server_id"])
    _boot(state, {**args, "start": True})


def _power_on(state: HetznerState, args: Args) -> None:
    state.driver.power_on(args["server_id"])


def _power_off(state: HetznerState, args: Args) -> None:
    state.driver.power_off(args["server_id"])


def _reboot(state: HetznerState, args: Args) -> None:
    state.driver.reboot(args["server_id"])


def _status_after(ok_status: str) -> Any:
    def finish(state: HetznerState, args: Args, ok: bool) -> None:
        _set_status(state, args, ok_status if ok else args.get("previous", ok_status))

    return finish


def _destroy(state: HetznerState, args: Args) -> None:
    state.driver.delete(args["server_id"])


def _deleted(state: HetznerState, args: Args, ok: bool) -> None:
    if not ok:
        _set_status(state, args, args.get("previous", "off"))
        return
    server_id = args["server_id"]
    for ip in state.store.all("primary_ip"):
        if ip["assignee_id"] != server_id:
            continue
        if ip["auto_delete"]:
            state.store.delete("primary_ip", ip["id"])
        else:
            state.store.put("primary_ip", {**ip, "assignee_id": None})
    for fw in state.store.all("firewall"):
        kept = [
            t
            for t in fw["applied_to"]
            if not (t["type"] == "server" and t["server"]["id"] == server_id)
        ]
        if kept != fw["applied_to"]:
            state.store.put("firewall", {**fw, "applied_to": kept})
    state.store.delete("server", server_id)


def _image_done(state: HetznerState, args: Args, ok: bool) -> None:
    image = state.store.get("image", args["image_id"])
    if image is None:
        return
    if ok:
        state.store.put("image", {**image, "status": "available"})
    else:
        state.store.delete("image", image["id"])


def _type_changed(state: HetznerState, args: Args, ok: bool) -> None:
    doc = _server(state, args)
    if doc is not None and ok:
        state.store.put("server", {**doc, "server_type": args["server_type"]})


OPS: dict[str, Op] = {
    "noop": NOOP,
    "create_server": Op(_boot, _created),
    "rebuild_server": Op(_rebuild, _status_after("running")),
    "start_server": Op(_power_on, _status_after("running")),
    "stop_server": Op(_power_off, _status_after("off")),
    "reboot_server": Op(_reboot, _status_after("running")),
    "delete_server": Op(_destroy, _deleted),
    "create_image": Op(NOOP.run, _image_done),
    "change_server_type": Op(NOOP.run, _type_changed),
}
