"""Everything that is not a server, primary IP or firewall: ssh_keys, images, server_types,
locations, datacenters and the pricing document (actions live in routes_actions)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from fastapi import APIRouter, Body, Request

from fatctl.sandbox.apiemu.store import now_iso
from fatctl.sandbox.hetzner import catalog, listing
from fatctl.sandbox.hetzner import validate as v
from fatctl.sandbox.hetzner.actions import ActionRunner
from fatctl.sandbox.hetzner.errors import ApiError, invalid, not_found
from fatctl.sandbox.hetzner.state import HetznerState
from fatctl.sandbox.hetzner.views import datacenter


def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint Hetzner shows (colon-separated hex of the key blob)."""
    parts = public_key.split()
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (IndexError, ValueError):
        raise invalid("public_key", "is not a valid SSH public key") from None
    if not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise invalid("public_key", "is not a valid SSH public key")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def _ssh_routes(api: APIRouter, state: HetznerState) -> None:
    @api.get("/ssh_keys")
    def list_keys(request: Request) -> dict[str, Any]:
        items = state.store.all("ssh_key")
        if fp := request.query_params.get("fingerprint"):
            items = [k for k in items if k["fingerprint"] == fp]
        sorts = request.query_params.getlist("sort")
        return listing.list_response("ssh_keys", items, request.query_params, sorts)

    @api.post("/ssh_keys", status_code=201)
    def create_key(payload: Any = Body(None)) -> dict[str, Any]:  # noqa: B008
        data = v.body(payload)
        name, public_key = v.required(data, "name"), v.required(data, "public_key").strip()
        fp = fingerprint(public_key)
        with state.store.tx():
            state.require_unique_name("ssh_key", name)
            if any(k["fingerprint"] == fp for k in state.store.all("ssh_key")):
                raise ApiError(
                    "uniqueness_error",
                    "SSH key with the same fingerprint exists",
                    {"fields": [{"name": "public_key", "messages": ["not unique"]}]},
                )
            key = {
                "id": state.new_id("ssh_key"),
                "name": name,
                "fingerprint": fp,
                "public_key": public_key,
                "labels": v.labels(data),
                "created": now_iso(),
            }
            return {"ssh_key": state.store.put("ssh_key", key)}

    @api.get("/ssh_keys/{key_id}")
    def get_key(key_id: str) -> dict[str, Any]:
        return {"ssh_key": state.get("ssh_key", key_id)}

    @api.put("/ssh_keys/{key_id}")
    def update_key(key_id: str, payload: Any = Body(None)) -> dict[str, Any]:  # noqa: B008
        data = v.body(payload)
        with state.store.tx():
            key = state.get("ssh_key", key_id)
            state.rename_relabel("ssh_key", key, data)
            return {"ssh_key": state.store.put("ssh_key", key)}

    @api.delete("/ssh_keys/{key_id}", status_code=204)
    def delete_key(key_id: str) -> None:
        state.store.delete("ssh_key", int(state.get("ssh_key", key_id)["id"]))


def _image_routes(api: APIRouter, state: HetznerState, runner: ActionRunner) -> None:
    def find(image_id: str) -> dict[str, Any]:
        image = next((i for i in catalog.system_images() if str(i["id"]) == image_id), None)
        return image or state.get("image", image_id)

    @api.get("/images")
    def list_images(request: Request) -> dict[str, Any]:
        q = request.query_params
        items = catalog.system_images() + state.store.all("image")
        for field in ("type", "architecture", "status"):
            wanted = q.getlist(field)
            items = [i for i in items if not wanted or i[field] in wanted]
        if q.get("bound_to"):
            items = [i for i in items if (i["bound_to"] or {}) == {"id": int(q["bound_to"])}]
        return listing.list_response("images", items, q, q.getlist("sort"))

    @api.get("/images/{image_id}")
    def get_image(image_id: str) -> dict[str, Any]:
        return {"image": find(image_id)}

    @api.put("/images/{image_id}")
    def update_image(image_id: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        data = v.body(payload)
        with state.store.tx():
            image = state.get("image", image_id)
            image["description"] = v.optional(data, "description", str, image["description"])
            if "labels" in data:
                image["labels"] = v.labels(data)
            return {"image": state.store.put("image", image)}

    @api.delete("/images/{image_id}", status_code=204)
    def delete_image(image_id: str) -> None:
        with state.store.tx():
            image = state.get("image", image_id)
            if image["protection"]["delete"]:
                raise ApiError("protected", "image is protected against deletion")
            state.store.delete("image", image["id"])

    @api.post("/images/{image_id}/actions/change_protection", status_code=201)
    def protect_image(image_id: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        data = v.body(payload)
        with state.store.tx():
            image = state.get("image", image_id)
            image["protection"] = {"delete": v.optional(data, "delete", bool, False)}
            state.store.put("image", image)
            res = [{"id": image["id"], "type": "image"}]
            return {"action": runner.submit("change_protection", res)[0]}


def _static_routes(api: APIRouter) -> None:
    def one(items: list[dict[str, Any]], key: str, item_id: str) -> dict[str, Any]:
        found = next((i for i in items if str(i["id"]) == item_id), None)
        if found is None:
            raise not_found(key)
        return {key: found}

    dcs = [datacenter(loc) for loc in catalog.LOCATIONS]

    @api.get("/server_types")
    def list_types(request: Request) -> dict[str, Any]:
        return listing.list_response("server_types", catalog.SERVER_TYPES, request.query_params)

    @api.get("/server_types/{type_id}")
    def get_type(type_id: str) -> dict[str, Any]:
        return one(catalog.SERVER_TYPES, "server_type", type_id)

    @api.get("/locations")
    def list_locations(request: Request) -> dict[str, Any]:
        return listing.list_response("locations", catalog.LOCATIONS, request.query_params)

    @api.get("/locations/{loc_id}")
    def get_location(loc_id: str) -> dict[str, Any]:
        return one(catalog.LOCATIONS, "location", loc_id)

    @api.get("/datacenters")
    def list_dcs(request: Request) -> dict[str, Any]:
        body = listing.list_response("datacenters", dcs, request.query_params)
        return {**body, "recommendation": dcs[0]["id"]}

    @api.get("/datacenters/{dc_id}")
    def get_dc(dc_id: str) -> dict[str, Any]:
        return one(dcs, "datacenter", dc_id)

    @api.get("/pricing")
    def pricing() -> dict[str, Any]:
        return catalog.pricing()


def router(state: HetznerState, runner: ActionRunner) -> APIRouter:
    api = APIRouter()
    _ssh_routes(api, state)
    _image_routes(api, state, runner)
    _static_routes(api)

    return api
