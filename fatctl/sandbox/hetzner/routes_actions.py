"""Action lookups: `/actions`, `/{kind}/actions[/{id}]` and `/{kind}/{id}/actions[/{id}]` for
primary IPs, firewalls and images (servers have their own, with `status` filters). Mounted
before the resource routers so `/servers/actions` is not read as a server id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from fatctl.sandbox.hetzner import listing
from fatctl.sandbox.hetzner.errors import ApiError, not_found
from fatctl.sandbox.hetzner.state import HetznerState

ACTIONS_LIST_REMOVED = (
    "https://docs.hetzner.cloud/changelog#2023-07-20-actions-list-endpoint-is-deprecated"
)
KINDS = {
    "servers": "server",
    "primary_ips": "primary_ip",
    "firewalls": "firewall",
    "images": "image",
}


def _listed(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    q = request.query_params
    ids = {int(i) for i in q.getlist("id") if i.isdigit()}
    statuses = q.getlist("status")
    items = [
        a
        for a in items
        if (not ids or a["id"] in ids) and (not statuses or a["status"] in statuses)
    ]
    return listing.list_response("actions", items, q, q.getlist("sort"))


def _kind(plural: str) -> str:
    if plural not in KINDS:
        raise not_found("resource")
    return KINDS[plural]


def _touching(state: HetznerState, kind: str, obj_id: int | None) -> list[dict[str, Any]]:
    return [
        a
        for a in state.store.all("action")
        if any(r["type"] == kind and (obj_id is None or r["id"] == obj_id) for r in a["resources"])
    ]


def router(state: HetznerState) -> APIRouter:
    api = APIRouter()

    @api.get("/actions")
    def actions_by_id(request: Request) -> dict[str, Any]:
        """Hetzner: "Returns multiple Action objects specified by the `id` parameter. **Note**: This
        endpoint previously allowed listing all actions in the project. This functionality was
        deprecated in July 2023 and removed on 30 January 2025." No pagination either."""
        ids = request.query_params.getlist("id")
        if not ids:
            raise ApiError(
                "deprecated_api_endpoint",
                "API functionality was removed",
                {"announcement": ACTIONS_LIST_REMOVED},
            )
        wanted = {int(i) for i in ids if i.isdigit()}
        return {"actions": [a for a in state.store.all("action") if a["id"] in wanted]}

    @api.get("/actions/{action_id}")
    def get_action(action_id: str) -> dict[str, Any]:
        return {"action": state.get("action", action_id)}

    @api.get("/{plural}/actions")
    def kind_actions(plural: str, request: Request) -> dict[str, Any]:
        return _listed(_touching(state, _kind(plural), None), request)

    @api.get("/{plural}/actions/{action_id}")
    def kind_action(plural: str, action_id: str) -> dict[str, Any]:
        action = state.get("action", action_id)
        if action not in _touching(state, _kind(plural), None):
            raise not_found("action")
        return {"action": action}

    @api.get("/{plural}/{obj_id}/actions")
    def object_actions(plural: str, obj_id: str, request: Request) -> dict[str, Any]:
        kind = _kind(plural)
        doc = state.get(kind, obj_id)
        return _listed(_touching(state, kind, int(doc["id"])), request)

    @api.get("/{plural}/{obj_id}/actions/{action_id}")
    def object_action(plural: str, obj_id: str, action_id: str) -> dict[str, Any]:
        kind = _kind(plural)
        doc = state.get(kind, obj_id)
        action = state.get("action", action_id)
        if {"id": doc["id"], "type": kind} not in action["resources"]:
            raise not_found("action")
        return {"action": action}

    return api
