"""Assemble the Cloudflare emulator: zones seeded from the start arguments, `/client/v4`
routes, error handlers, admin endpoints, and the shared middleware (1200 requests / 5 min, then
a five-minute block)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from fatctl.sandbox.apiemu.admin import ADMIN_PREFIX, mount_admin
from fatctl.sandbox.apiemu.faults import FaultConfig, FaultState
from fatctl.sandbox.apiemu.middleware import EmulatorMiddleware
from fatctl.sandbox.apiemu.ratelimit import BlockingWindow
from fatctl.sandbox.apiemu.stats import Stats
from fatctl.sandbox.apiemu.store import Store, now_iso
from fatctl.sandbox.cloudflare.errors import CfError, CloudflareDialect
from fatctl.sandbox.cloudflare.plans import DEFAULT_PLAN, Plan, plan_doc, plan_named
from fatctl.sandbox.cloudflare.routes import r2_router, zone_router

RATE_WINDOW_SECONDS = 300.0


@dataclass
class CfEmulator:
    asgi: Any
    store: Store
    faults: FaultState
    stats: Stats
    bucket: BlockingWindow
    token: str
    account_id: str

    def inventory(self) -> dict[str, Any]:
        return inventory(self.store)


def _zone_doc(name: str, account_id: str, plan: Plan) -> dict[str, Any]:
    stamp = now_iso()
    return {
        "id": uuid.uuid4().hex,
        "name": name,
        "status": "active",
        "paused": False,
        "type": "full",
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": None,
        "original_registrar": None,
        "original_dnshost": None,
        "created_on": stamp,
        "modified_on": stamp,
        "activated_on": stamp,
        "meta": {
            "step": 2,
            "custom_certificate_quota": 0,
            "page_rule_quota": 3,
            "phishing_detected": False,
        },
        "owner": {"id": None, "type": "user", "email": None},
        "account": {"id": account_id, "name": "sandbox"},
        "permissions": [],
        "plan": plan_doc(plan),
        "vanity_name_servers": [],
    }


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(CfError)
    async def cf_error(request: Request, exc: CfError) -> JSONResponse:
        return JSONResponse(exc.payload(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = CfError(400, 9207, "Request body is invalid.")
        return JSONResponse(err.payload(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if request.url.path.startswith(ADMIN_PREFIX):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        err = CfError(exc.status_code, 7000, "No route for that URI")
        return JSONResponse(err.payload(), status_code=exc.status_code)


def _setting(store: Store, key: str, make: Any) -> str:
    value = store.setting(key)
    if value is None:
        value = make()
        store.set_setting(key, value)
    return value


def inventory(store: Store) -> dict[str, Any]:
    """Zones, DNS records and issued R2 credentials (without their secret digests)."""
    issued = [
        {k: v for k, v in c.items() if k != "secret_sha256"} for c in store.all("r2_credential")
    ]
    return {
        "zones": store.all("zone"),
        "dns_records": store.all("dns_record"),
        "r2_credentials": issued,
    }


def build(
    state_dir: Path,
    zones: tuple[str, ...],
    account_id: str | None,
    token: str | None,
    faults: FaultConfig | None,
    rate_limit: int,
    zone_plans: Mapping[str, str] | None = None,
    block_seconds: float | None = None,
) -> CfEmulator:
    store = Store(state_dir / "cloudflare.sqlite3")
    token = token or _setting(store, "api_token", lambda: secrets.token_urlsafe(30))
    account_id = account_id or _setting(store, "account_id", lambda: uuid.uuid4().hex)
    with store.tx():
        known = {z["name"] for z in store.all("zone")}
        for name in zones:
            if name not in known:
                plan = plan_named((zone_plans or {}).get(name, DEFAULT_PLAN))
                store.put("zone", _zone_doc(name.lower().rstrip("."), account_id, plan))
    fault_state, stats = FaultState(faults), Stats()
    bucket = BlockingWindow(rate_limit, RATE_WINDOW_SECONDS, block_seconds)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _handlers(app)
    app.include_router(zone_router(store), prefix="/client/v4")
    app.include_router(r2_router(store, account_id), prefix="/client/v4")
    mount_admin(app, fault_state, stats, bucket, lambda: inventory(store))

    asgi = EmulatorMiddleware(app, CloudflareDialect(token), fault_state, bucket, stats)
    return CfEmulator(asgi, store, fault_state, stats, bucket, token, account_id)
