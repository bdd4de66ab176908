"""`/client/v4` routes: zones, DNS records and R2 temporary credentials."""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Body, Request

from fatctl.sandbox.apiemu.store import Store, now_iso
from fatctl.sandbox.cloudflare import records as rec
from fatctl.sandbox.cloudflare.errors import (
    CfError,
    bad_request,
    envelope,
    record_missing,
    zone_missing,
)
from fatctl.sandbox.cloudflare.plans import check_records_quota, check_tags_quota, zone_plan

R2_PERMISSIONS = {"admin-read-write", "admin-read-only", "object-read-write", "object-read-only"}
R2_MAX_TTL = 7 * 24 * 3600


def paged(items: list[Any], query: Mapping[str, str], default: int, maximum: int) -> dict:
    try:
        page = int(query.get("page", 1))
        per_page = int(query.get("per_page", default))
    except ValueError:
        raise bad_request(1001, "page and per_page must be integers") from None
    if page < 1 or not 5 <= per_page <= maximum:
        raise bad_request(1001, f"per_page must be between 5 and {maximum}, page >= 1")
    chunk = items[(page - 1) * per_page : page * per_page]
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": len(items),
        "total_pages": max(1, math.ceil(len(items) / per_page)),
    }
    return envelope(chunk, result_info=info)


def _zone(store: Store, zone_id: str) -> dict[str, Any]:
    zone = store.get("zone", zone_id)
    if zone is None:
        raise zone_missing()
    return zone


def _validated(zone: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    rtype = str(data.get("type") or "").upper()
    if rtype not in rec.TYPES:
        raise bad_request(9000, "DNS record type is invalid.")
    if not isinstance(data.get("name"), str) or not isinstance(data.get("content"), str):
        raise bad_request(9007, "name and content are required.")
    rec.check_content(rtype, data["content"])
    proxied = bool(data.get("proxied", False))
    if proxied and rtype not in rec.PROXIABLE:
        raise bad_request(9004, f"{rtype} records cannot be proxied.")
    return {
        "type": rtype,
        "name": rec.fqdn(data["name"], zone["name"]),
        "content": data["content"],
        "ttl": rec.check_ttl(data.get("ttl", 1)),
        "proxied": proxied,
        "proxiable": rtype in rec.PROXIABLE,
        "comment": rec.check_comment(data.get("comment")),
        "tags": rec.check_tags(data.get("tags", [])),
        "settings": {},
        "meta": {},
        **({"priority": data["priority"]} if "priority" in data else {}),
    }


def _check_conflicts(store: Store, zone_id: str, record: dict[str, Any], own: str) -> None:
    for other in store.all("dns_record"):
        if other["zone_id"] != zone_id or other["id"] == own or other["name"] != record["name"]:
            continue
        if other["type"] == record["type"] and other["content"] == record["content"]:
            raise bad_request(81058, "An identical record already exists.")
        if "CNAME" in (other["type"], record["type"]) and {other["type"], record["type"]} & {
            "A",
            "AAAA",
            "CNAME",
        }:
            raise bad_request(81053, "An A, AAAA, or CNAME record with that host already exists.")


def _save(store: Store, zone: dict, data: dict, own: dict | None) -> dict[str, Any]:
    record = _validated(zone, data)
    plan = zone_plan(zone)
    check_tags_quota(plan, record["tags"])
    with store.tx():
        record_id = own["id"] if own else uuid.uuid4().hex
        if own is None:
            in_zone = sum(1 for r in store.all("dns_record") if r["zone_id"] == zone["id"])
            check_records_quota(plan, in_zone)
        _check_conflicts(store, zone["id"], record, record_id)
        stamp = now_iso()
        created = own["created_on"] if own else stamp
        record.update(
            id=record_id,
            zone_id=zone["id"],
            zone_name=zone["name"],
            created_on=created,
            modified_on=stamp,
        )
        return store.put("dns_record", record)


# Kept with each record to scope it, but not shown: "After November 30th, 2024, Cloudflare will
# stop including the zone_id and zone_name fields on individual DNS records in API responses"
# (developers.cloudflare.com/fundamentals/api/reference/deprecations).
_INTERNAL = ("zone_id", "zone_name")


def shown(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _INTERNAL}


def _list_records(store: Store, zone: dict, request: Request) -> dict[str, Any]:
    q = request.query_params
    tag_params = [(k.partition(".")[2], v) for k, v in q.multi_items() if k.split(".")[0] == "tag"]
    filters, tags = rec.build_filters(q, tag_params)
    items = [
        r
        for r in store.all("dns_record")
        if r["zone_id"] == zone["id"]
        and rec.matches(
            r, filters, tags, q.get("match", "all") == "all", q.get("tag_match", "all") == "all"
        )
    ]
    order = q.get("order", "type")
    if order not in ("type", "name", "content", "ttl", "proxied"):
        raise bad_request(1001, "invalid order")
    items.sort(
        key=lambda r: (r[order], r["name"], r["created_on"]), reverse=q.get("direction") == "desc"
    )
    return paged([shown(r) for r in items], q, default=100, maximum=5_000_000)


def _list_routes(api: APIRouter, store: Store) -> None:

    @api.get("/zones")
    def list_zones(request: Request) -> dict[str, Any]:
        q = request.query_params
        zones = [
            z
            for z in store.all("zone")
            if q.get("name") in (None, z["name"])
            and q.get("account.id") in (None, z["account"]["id"])
        ]
        return paged(sorted(zones, key=lambda z: z["name"]), q, default=20, maximum=50)

    @api.get("/zones/{zone_id}")
    def get_zone(zone_id: str) -> dict[str, Any]:
        return envelope(_zone(store, zone_id))

    @api.get("/zones/{zone_id}/dns_records")
    def list_records(zone_id: str, request: Request) -> dict[str, Any]:
        return _list_records(store, _zone(store, zone_id), request)

    @api.post("/zones/{zone_id}/dns_records")
    def create_record(zone_id: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        return envelope(shown(_save(store, _zone(store, zone_id), _object(payload), None)))


def _record_routes(api: APIRouter, store: Store) -> None:
    @api.get("/zones/{zone_id}/dns_records/{record_id}")
    def get_record(zone_id: str, record_id: str) -> dict[str, Any]:
        return envelope(shown(_record(store, _zone(store, zone_id), record_id)))

    @api.put("/zones/{zone_id}/dns_records/{record_id}")
    def put_record(zone_id: str, record_id: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        zone = _zone(store, zone_id)
        own = _record(store, zone, record_id)
        return envelope(shown(_save(store, zone, _object(payload), own)))

    @api.patch("/zones/{zone_id}/dns_records/{record_id}")
    def patch_record(zone_id: str, record_id: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        zone = _zone(store, zone_id)
        own = _record(store, zone, record_id)
        merged = {
            k: own[k] for k in ("type", "name", "content", "ttl", "proxied", "comment", "tags")
        }
        return envelope(shown(_save(store, zone, {**merged, **_object(payload)}, own)))

    @api.delete("/zones/{zone_id}/dns_records/{record_id}")
    def delete_record(zone_id: str, record_id: str) -> dict[str, Any]:
        with store.tx():
            record = _record(store, _zone(store, zone_id), record_id)
            store.delete("dns_record", record["id"])
        return envelope({"id": record["id"]})


def zone_router(store: Store) -> APIRouter:
    api = APIRouter()
    _list_routes(api, store)
    _record_routes(api, store)
    return api


def _record(store: Store, zone: dict[str, Any], record_id: str) -> dict[str, Any]:
    record = store.get("dns_record", record_id)
    if record is None or record["zone_id"] != zone["id"]:
        raise record_missing()
    return record


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise bad_request(9207, "Request body is invalid.")
    return payload


def _issue(store: Store, data: dict[str, Any]) -> dict[str, str]:
    bucket, parent = data.get("bucket"), data.get("parentAccessKeyId")
    if not isinstance(bucket, str) or not bucket or not isinstance(parent, str) or not parent:
        raise bad_request(10040, "bucket and parentAccessKeyId are required.")
    if data.get("permission") not in R2_PERMISSIONS:
        raise bad_request(10040, f"permission must be one of {sorted(R2_PERMISSIONS)}.")
    ttl = data.get("ttlSeconds")
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 < ttl <= R2_MAX_TTL:
        raise bad_request(10040, f"ttlSeconds must be between 1 and {R2_MAX_TTL}.")
    scopes = {k: data.get(k) or [] for k in ("prefixes", "objects")}
    if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in scopes.values()):
        raise bad_request(10040, "prefixes and objects must be lists of strings.")
    creds = {
        "accessKeyId": secrets.token_hex(16),
        "secretAccessKey": secrets.token_hex(32),
        "sessionToken": base64.b64encode(secrets.token_bytes(96)).decode(),
    }
    store.put(
        "r2_credential",
        {
            # the emulator keeps only digests of the secret parts, like a real issuer would
            "id": creds["accessKeyId"],
            "bucket": bucket,
            "parent_access_key_id": parent,
            "permission": data["permission"],
            **scopes,
            "expires_at": int(time.time() + ttl),
            "secret_sha256": hashlib.sha256(creds["secretAccessKey"].encode()).hexdigest(),
        },
    )
    return creds


def r2_router(store: Store, account_id: str) -> APIRouter:
    api = APIRouter()

    @api.post("/accounts/{account}/r2/temp-access-credentials")
    def temp_credentials(account: str, payload: Any = Body(None)) -> dict:  # noqa: B008
        if account != account_id:
            raise CfError(403, 10000, "Authentication error")
        return envelope(_issue(store, _object(payload)))

    return api
