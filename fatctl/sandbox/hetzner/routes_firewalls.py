"""`/firewalls`: create with rules and targets (servers or label selectors), list, get,
update, delete (refused while applied), set_rules, apply_to_resources,
remove_from_resources."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Body, Request

from fatctl.sandbox.apiemu.store import now_iso
from fatctl.sandbox.hetzner import listing
from fatctl.sandbox.hetzner import validate as v
from fatctl.sandbox.hetzner.actions import ActionRunner
from fatctl.sandbox.hetzner.errors import ApiError, invalid, not_found
from fatctl.sandbox.hetzner.selectors import matches
from fatctl.sandbox.hetzner.state import HetznerState

_PROTOCOLS = {"tcp", "udp", "icmp", "esp", "gre"}
MAX_CIDRS = 100


def _rules(data: dict[str, Any]) -> list[dict[str, Any]]:
    rules = []
    for raw in v.optional(data, "rules", list, []):
        if not isinstance(raw, dict) or raw.get("direction") not in ("in", "out"):
            raise invalid("rules", "direction must be in or out")
        if raw.get("protocol") not in _PROTOCOLS:
            raise invalid("rules", "unknown protocol")
        if raw["protocol"] in ("tcp", "udp") and not raw.get("port"):
            raise invalid("rules", "port is required for tcp and udp")
        rules.append(
            {
                "direction": raw["direction"],
                "protocol": raw["protocol"],
                "port": raw.get("port"),
                "source_ips": _cidrs(raw, "source_ips"),
                "destination_ips": _cidrs(raw, "destination_ips"),
                "description": raw.get("description"),
            }
        )
    return rules


def _cidrs(rule: dict[str, Any], field: str) -> list[str]:
    """Hetzner's rule schema: "IPs must be provided in CIDR block notation. You can specify 100
    CIDR blocks at most. The CIDR blocks may refer to networks (with empty host bits) or single
    hosts [...] IPv6 CIDRs will be transformed to their canonical form according to RFC5952"."""
    values = rule.get(field) or []
    if not isinstance(values, list) or len(values) > MAX_CIDRS:
        raise invalid(f"rules.{field}", f"must be a list of at most {MAX_CIDRS} CIDR blocks")
    blocks = []
    for value in values:
        try:
            if not isinstance(value, str) or "/" not in value:
                raise ValueError(value)
            blocks.append(str(ipaddress.ip_network(value, strict=True)))
        except ValueError:
            raise invalid(f"rules.{field}", f"{value!r} is not a valid CIDR block") from None
    return blocks


def _targets(state: HetznerState, items: list[Any]) -> list[dict[str, Any]]:
    targets = []
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "server":
            server_id = (item.get("server") or {}).get("id")
            if not isinstance(server_id, int):
                raise invalid("apply_to", "server.id is required")
            if state.store.get("server", server_id) is None:
                raise ApiError("firewall_resource_not_found", f"server {server_id} not found")
            targets.append({"type": "server", "server": {"id": server_id}})
        elif kind == "label_selector":
            selector = (item.get("label_selector") or {}).get("selector")
            if not isinstance(selector, str):
                raise invalid("apply_to", "label_selector.selector is required")
            targets.append({"type": "label_selector", "label_selector": {"selector": selector}})
        else:
            raise invalid("apply_to", "type must be server or label_selector")
    return targets


def firewall_view(state: HetznerState, fw: dict[str, Any]) -> dict[str, Any]:
    applied = []
    for target in fw["applied_to"]:
        if target["type"] == "label_selector":
            selector = target["label_selector"]["selector"]
            servers = [
                {"type": "server", "server": {"id": s["id"]}}
                for s in state.store.all("server")
                if matches(selector, s["labels"])
            ]
            applied.append({**target, "applied_to_resources": servers})
        else:
            applied.append(target)
    return {**fw, "applied_to": applied}


def _actions(
    state: HetznerState, runner: ActionRunner, command: str, fw: dict, targets: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    res = [{"id": fw["id"], "type": "firewall"}]
    return [runner.submit(command, res)[0] for _ in range(max(1, len(targets)))]


def _verb(state: HetznerState, runner: ActionRunner, fw: dict, verb: str, data: dict) -> dict:
    if verb == "set_rules":
        fw["rules"] = _rules(data)
        state.store.put("firewall", fw)
        return {"actions": _actions(state, runner, "set_firewall_rules", fw, [])}
    targets = _targets(
        state,
        v.optional(data, "apply_to" if verb == "apply_to_resources" else "remove_from", list, []),
    )
    if verb == "apply_to_resources":
        fresh = [t for t in targets if t not in fw["applied_to"]]
        if len(fresh) < len(targets):
            raise ApiError("firewall_already_applied", "firewall is already applied")
        fw["applied_to"] += fresh
        command = "apply_firewall"
    elif verb == "remove_from_resources":
        missing = [t for t in targets if t not in fw["applied_to"]]
        if missing:
            raise ApiError("firewall_resource_not_found", "firewall is not applied there")
        fw["applied_to"] = [t for t in fw["applied_to"] if t not in targets]
        command = "remove_firewall"
    else:
        raise not_found("action")
    state.store.put("firewall", fw)
    return {"actions": _actions(state, runner, command, fw, targets)}


def _create_routes(api: APIRouter, state: HetznerState, runner: ActionRunner) -> None:

    @api.get("/firewalls")
    def list_firewalls(request: Request) -> dict[str, Any]:
        items = [firewall_view(state, fw) for fw in state.store.all("firewall")]
        sorts = request.query_params.getlist("sort")
        return listing.list_response("firewalls", items, request.query_params, sorts)

    @api.post("/firewalls", status_code=201)
    def create_firewall(payload: Any = Body(None)) -> dict[str, Any]:  # noqa: B008
        data = v.body(payload)
        name = v.required(data, "name")
        with state.store.tx():
            state.require_unique_name("firewall", name)
            fw = {
                "id": state.new_id("firewall"),
                "name": name,
                "labels": v.labels(data),
                "created": now_iso(),
                "rules": _rules(data),
                "applied_to": _targets(state, v.optional(data, "apply_to", list, [])),
            }
            state.store.put("firewall", fw)
            actions = _actions(state, runner, "apply_firewall", fw, fw["applied_to"])
            return {"firewall": firewall_view(state, fw), "actions": actions}

    @api.get("/firewalls/{fw_id}")
    def get_firewall(fw_id: str) -> dict[str, Any]:
        return {"firewall": firewall_view(state, state.get("firewall", fw_id))}


def _change_routes(api: APIRouter, state: HetznerState, runner: ActionRunner) -> None:
    @api.put("/firewalls/{fw_id}")
    def update_firewall(fw_id: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        data = v.body(payload)
        with state.store.tx():
            fw = state.get("firewall", fw_id)
            state.rename_relabel("firewall", fw, data)
            state.store.put("firewall", fw)
            return {"firewall": firewall_view(state, fw)}

    @api.delete("/firewalls/{fw_id}", status_code=204)
    def delete_firewall(fw_id: str) -> None:
        with state.store.tx():
            fw = state.get("firewall", fw_id)
            if fw["applied_to"]:
                raise ApiError("resource_in_use", "firewall is still applied to resources")
            state.store.delete("firewall", fw["id"])

    @api.post("/firewalls/{fw_id}/actions/{verb}", status_code=201)
    def firewall_verb(fw_id: str, verb: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        with state.store.tx():
            return _verb(state, runner, state.get("firewall", fw_id), verb, v.body(payload))


def router(state: HetznerState, runner: ActionRunner) -> APIRouter:
    api = APIRouter()
    _create_routes(api, state, runner)
    _change_routes(api, state, runner)
    return api
