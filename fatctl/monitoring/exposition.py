"""The ASGI app serving `/metrics` from a registry, for `fatctl serve` to mount (or to run on
its own under uvicorn, as the integration test does).

prometheus-client's own ASGI app answers on every path; this one answers `/metrics` only, so a
mount or a typo elsewhere is a 404 rather than a second copy of the metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METRICS_PATH = "/metrics"


def _asks_for(scope: Scope, path: str) -> bool:
    """The request is for `path`, whether the app runs on its own or is mounted there (a
    mount's `root_path` then ends with it)."""
    full, root = scope.get("path", ""), scope.get("root_path", "")
    if full.rstrip("/") == path:
        return True
    inner = full[len(root) :] if full.startswith(root) else full
    return root.endswith(path) and inner in ("", "/")


def metrics_app(registry: CollectorRegistry, path: str = METRICS_PATH) -> ASGIApp:
    serve = make_asgi_app(registry)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": f"{message['type']}.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "http" and _asks_for(scope, path):
            await serve(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": 404,
             "headers": [(b"content-type", b"text/plain; charset=utf-8")]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": b"not found\n"})

    return app
