"""Assemble the Hetzner emulator: the FastAPI app with the `/v1` routers and error handlers,
wrapped in the shared middleware (auth, rate budget, faults, counters)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from fatctl.sandbox.apiemu.admin import mount_admin
from fatctl.sandbox.apiemu.faults import FaultConfig, FaultState
from fatctl.sandbox.apiemu.middleware import EmulatorMiddleware
from fatctl.sandbox.apiemu.ratelimit import TokenBucket
from fatctl.sandbox.apiemu.stats import Stats
from fatctl.sandbox.driver import BoxDriver
from fatctl.sandbox.hetzner import (
    routes_actions,
    routes_catalog,
    routes_firewalls,
    routes_primary_ips,
    routes_server_actions,
    routes_servers,
)
from fatctl.sandbox.hetzner.actions import ActionRunner
from fatctl.sandbox.hetzner.errors import ApiError, HetznerDialect
from fatctl.sandbox.hetzner.links import PaginationLinks
from fatctl.sandbox.hetzner.ops import OPS
from fatctl.sandbox.hetzner.state import HetznerState

RATE_WINDOW_SECONDS = 3600.0


@dataclass
class Emulator:
    asgi: Any
    state: HetznerState
    runner: ActionRunner
    faults: FaultState
    stats: Stats
    bucket: TokenBucket
    token: str

    @property
    def store(self) -> Any:
        return self.state.store

    def inventory(self) -> dict[str, Any]:
        return inventory(self.state)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.payload(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        json_broken = any(e.get("type") == "json_invalid" for e in exc.errors())
        err = (
            ApiError("json_error", "invalid JSON in request body")
            if json_broken
            else (ApiError("invalid_input", "invalid input"))
        )
        return JSONResponse(err.payload(), status_code=err.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if request.url.path.startswith("/__sandbox"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        code = "not_found" if exc.status_code == 404 else "invalid_input"
        return JSONResponse(ApiError(code, str(exc.detail)).payload(), status_code=exc.status_code)


def inventory(state: HetznerState) -> dict[str, Any]:
    """Every resource the emulated project holds, as stored (user_data left out)."""
    kinds = ("server", "primary_ip", "firewall", "ssh_key", "image")
    found = {f"{kind}s": state.store.all(kind) for kind in kinds}
    for server in found["servers"]:
        server.pop("user_data", None)
    return found


def build(
    state_dir: Path,
    token: str | None,
    driver: BoxDriver | None,
    faults: FaultConfig | None,
    rate_limit: int,
    action_delay: float,
) -> Emulator:
    fault_state = FaultState(faults)
    state = HetznerState(state_dir, driver, fault_state, action_delay)
    token = token or _persisted_token(state)
    runner = ActionRunner(state, OPS)
    stats = Stats()
    bucket = TokenBucket(rate_limit, RATE_WINDOW_SECONDS)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    _error_handlers(app)
    app.include_router(routes_actions.router(state), prefix="/v1")
    for module in (
        routes_servers,
        routes_server_actions,
        routes_primary_ips,
        routes_firewalls,
        routes_catalog,
    ):
        app.include_router(module.router(state, runner), prefix="/v1")
    mount_admin(app, fault_state, stats, bucket, lambda: inventory(state))
    asgi = EmulatorMiddleware(
        PaginationLinks(app), HetznerDialect(token), fault_state, bucket, stats
    )
    runner.resume()
    return Emulator(asgi, state, runner, fault_state, stats, bucket, token)


def _persisted_token(state: HetznerState) -> str:
    """One token per state dir, so a restarted emulator accepts the clients it had."""
    token = state.store.setting("api_token")
    if token is None:
        token = secrets.token_hex(32)
        state.store.set_setting("api_token", token)
    return token
