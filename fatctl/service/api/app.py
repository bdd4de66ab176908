"""The FastAPI app: the routes, one JSON error shape, an audit line per request, and the DBOS
runtime run by the app's lifespan (started with the server, stopped with it).

Errors: every refusal answers `{"error": {"code", "kind", "message"}}` (see
`fatctl.service.errors`), also FastAPI's own (a malformed body is bad input: 400, exit code 2;
an unknown path 404). Audit: `audit_events` gets one row per request, actor `token:<name>` (or
`anonymous` when no live token was shown), action `api.<METHOD>`, the path as target, and the
status; written after the answer is known, so a refused request is audited as refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from fatctl import __version__
from fatctl.errors import BadInput, FatctlError, NotFound
from fatctl.service.api import fleet, rollouts, serving
from fatctl.service.api.metrics import audited, metrics_router
from fatctl.service.api.routes import router
from fatctl.service.context import Runtime
from fatctl.service.errors import error_body, http_status
from fatctl.service.runtime import running
from fatctl.services.common.audit import audit_change

AUDIT_TARGET_MAX = 255


def create_app(runtime: Runtime | None, *, launch: bool = True) -> FastAPI:
    """The API over `runtime`; `launch=False` serves without starting DBOS (tests that only
    read, and the OpenAPI document, which needs no runtime at all)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is None or not launch:
            yield
            return
        # DBOS's launch and queue registration refuse to run on an event loop's thread.
        stack = ExitStack()
        await run_in_threadpool(stack.enter_context, running(runtime))
        try:
            yield
        finally:
            await run_in_threadpool(stack.close)

    about = "The control plane of a fleet of OpenClaw agents, as a service."
    app = FastAPI(title="fatctl", version=__version__, lifespan=lifespan, description=about)
    app.state.runtime = runtime
    app.include_router(router)
    for more in (serving.router, rollouts.router, fleet.router):
        app.include_router(more)
    if runtime is not None:
        app.include_router(metrics_router(runtime.settings.database_url))
    app.add_exception_handler(FatctlError, _fatctl_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
    app.middleware("http")(_audited)
    return app


def _fatctl_error(request: Request, exc: FatctlError) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=http_status(exc))


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return _fatctl_error(request, BadInput(f"{where or 'request'}: {first.get('msg', 'invalid')}"))


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 404:
        return _fatctl_error(request, NotFound(f"no such path: {request.url.path}"))
    body = {"error": {"code": 1, "kind": "http", "message": str(exc.detail)}}
    return JSONResponse(body, status_code=exc.status_code)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not a refusal: the same shape, and no exception text (it could hold a secret);
    the server's log has the traceback."""
    body = {
        "error": {"code": 1, "kind": "failed", "message": "internal error (see the server log)"}
    }
    return JSONResponse(body, status_code=500)


async def _audited(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    runtime = request.app.state.runtime
    if runtime is not None and audited(request.url.path, response.status_code):
        name = getattr(request.state, "token_name", "")
        await run_in_threadpool(_audit, runtime, name, request, response.status_code)
    return response


def _audit(runtime: Runtime, token: str, request: Request, status: int) -> None:
    result = "ok" if status < 400 else "refused" if status < 500 else "failed"
    audit_change(runtime.db, actor=f"token:{token}" if token else "anonymous",
                 action=f"api.{request.method}", target=request.url.path[:AUDIT_TARGET_MAX],
                 result=result, detail={"status": status})  # fmt: skip
