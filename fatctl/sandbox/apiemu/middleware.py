"""The outermost ASGI layer of an emulator: counts calls, checks the bearer token, enforces the
rate budget, injects faults and adds the budget's headers (each cloud's own) to every API answer.

It wraps the application directly (not through Starlette's middleware stack) so that `send` is
uvicorn's own: dropping a connection means closing uvicorn's transport before any byte of the
answer is written, which is what a client sees when a load balancer loses a request.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from fatctl.sandbox.apiemu.faults import Fault, FaultState
from fatctl.sandbox.apiemu.ratelimit import Limiter
from fatctl.sandbox.apiemu.stats import Stats

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
_PROXY_STATUSES = {502: b"502 Bad Gateway", 504: b"504 Gateway Time-out"}


class Dialect(Protocol):
    """How one cloud spells its API prefix, its auth and its error envelope."""

    prefix: str
    request_id_header: bytes  # what the cloud calls its per-request id (logs, support tickets)

    def authorized(self, authorization: str | None) -> bool: ...

    def error_body(self, status: int, code: str, message: str) -> bytes: ...


class BearerAuth:
    """The token check both clouds use: `Authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}"

    def authorized(self, authorization: str | None) -> bool:
        return authorization == self._expected


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class EmulatorMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        dialect: Dialect,
        faults: FaultState,
        bucket: Limiter,
        stats: Stats,
    ) -> None:
        self.app, self.dialect, self.faults = app, dialect, faults
        self.bucket, self.stats = bucket, stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.dialect.prefix):
            await self.app(scope, receive, send)
            return
        self.stats.enter()
        try:
            await self._api(scope, receive, send)
        finally:
            self.stats.leave()

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        self.stats.call(method, scope["path"])
        if not self.dialect.authorized(_headers(scope).get("authorization")):
            await self._error(send, 401, "unauthorized", "unable to authenticate", [])
            return
        verdict = self.bucket.take()
        extra = [
            *self.bucket.headers(verdict),
            (self.dialect.request_id_header, secrets.token_hex(8).encode()),
        ]
        if not verdict.allowed:
            self.stats.event("rate_limited")
            retry = [(b"retry-after", str(max(verdict.retry_after, 1)).encode())]
            await self._error(
                send, 429, "rate_limit_exceeded", "limit of requests exceeded", extra + retry
            )
            return
        if self.faults.hold_now(method, scope["path"], method in _MUTATING):
            self.stats.event("injected_hold")
            await self._hold(scope, receive, send)
            return
        fault, status = self.faults.decide(method in _MUTATING)
        if fault is not Fault.NONE:
            self.stats.event(f"injected_{fault.value}")
        await self._dispatch(fault, status, extra, scope, receive, send)

    async def _dispatch(
        self,
        fault: Fault,
        status: int,
        extra: list[tuple[bytes, bytes]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if fault is Fault.RATE_LIMIT:
            # an injected burst looks like an exhausted budget: nothing left until Retry-After
            wait = self.faults.config.retry_after
            burst = [
                *self.bucket.exhausted(wait, time.time()),
                (b"retry-after", str(wait).encode()),
            ]
            await self._error(send, 429, "rate_limit_exceeded", "limit of requests exceeded", burst)
        elif fault is Fault.DROP:
            await drop_connection(send)
        elif fault is Fault.SERVER_ERROR:
            await self._server_error(send, status, extra)
        elif fault is Fault.LOCKED:
            await self._error(send, 423, "locked", "resource is locked by a running action", extra)
        elif fault is Fault.CONFLICT:
            await self._error(
                send, 409, "conflict", "resource has been changed concurrently", extra
            )
        elif fault is Fault.DROP_RESPONSE:
            await self.app(scope, receive, _swallow)
            await drop_connection(send)
        else:
            await self.app(scope, receive, self._with_headers(send, extra))

    async def _hold(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Do the work, say so through the marker, then keep the answer back until the client
        is gone (killed by a crash harness) or `hold_seconds` pass, and close the connection."""
        await self.app(scope, receive, _swallow)
        self.faults.mark_held()
        cycle = getattr(send, "__self__", None)
        deadline = time.monotonic() + self.faults.config.hold_seconds
        while time.monotonic() < deadline and not getattr(cycle, "disconnected", False):
            await asyncio.sleep(0.05)
        await drop_connection(send)

    def _with_headers(self, send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
                self.stats.status(int(message["status"]))
            await send(message)

        return wrapped

    async def _server_error(self, send: Send, status: int, extra: list) -> None:
        if status in _PROXY_STATUSES:
            # what a load balancer in front of the API answers: plain text, no envelope
            await _respond(send, status, _PROXY_STATUSES[status], b"text/plain", extra)
            self.stats.status(status)
            return
        code = "server_error" if status == 500 else "service_error"
        await self._error(send, status, code, "injected fault", extra)

    async def _error(
        self, send: Send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]]
    ) -> None:
        self.stats.status(status)
        body = self.dialect.error_body(status, code, message)
        await _respond(send, status, body, b"application/json", extra)


async def _respond(
    send: Send, status: int, body: bytes, ctype: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})


async def _swallow(message: Message) -> None:
    return None


async def drop_connection(send: Send) -> None:
    """Close the client's connection without answering. uvicorn's `send` is a bound method of
    its request cycle, which owns the transport; once the loss is noticed the cycle counts as
    disconnected and uvicorn writes nothing more."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop: not running under uvicorn's HTTP protocol")
    transport.close()
    for _ in range(100):
        if getattr(cycle, "disconnected", False):
            return
        await asyncio.sleep(0)


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload).encode()
