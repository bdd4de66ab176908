"""The fleet prober: one HTTPS `GET /readyz` per box, many at once, each with its own deadline.

One request through Caddy on `https://<agent>.<domain>/readyz` checks DNS, TLS, the proxy and the
gateway's own readiness without SSH or a cloud API call. OpenClaw answers a remote caller only
`{"ready": true}` with 200 or `{"ready": false}` with 503 (docs/gateway/health.md: "Readiness
details follow the same local-or-authenticated gate"), so the reason a box is not ready comes
from escalating to `fat-health --json` over SSH (`history.ProbeHistory.escalate`), not from here.

`classify_answer` and `classify_error` are pure; `sweep` is the I/O. A target may name the
address to connect to (tests, and checking a box before its DNS record exists): the request
then goes to that address with the box's name as TLS SNI and Host header, and the certificate
is still verified against the name, as `services.common.https_probe` does for the
provisioning gate.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from fatctl.services.common.https_probe import HTTPS_PORT, failure_reason

READY_PATH = "/readyz"
# The readiness body is a few bytes; anything longer is not the gateway's answer.
MAX_BODY_BYTES = 4096


@dataclass(frozen=True)
class ProbeTarget:
    agent: str
    host: str  # the box's name: <agent>.<domain>
    address: str | None = None  # connect here instead of resolving `host`
    port: int = HTTPS_PORT

    @property
    def url(self) -> str:
        where = self.address or self.host
        if ":" in where:  # an IPv6 literal
            where = f"[{where}]"
        port = "" if self.port == HTTPS_PORT else f":{self.port}"
        return f"https://{where}{port}{READY_PATH}"

    @property
    def host_header(self) -> str:
        return self.host if self.port == HTTPS_PORT else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ProbeResult:
    agent: str
    ok: bool
    status: int | None  # the HTTP status, None when no answer came
    latency_s: float
    reason: str = ""  # one line; "" when ok
    at: float = 0.0  # wall-clock seconds when the request started


def classify_answer(status: int, body: bytes) -> tuple[bool, str]:
    """(ok, reason) for an HTTP answer: ready only on 200 with the gateway's `"ready": true`.

    A 200 without it is some other server answering for the name (a parked domain, a proxy
    default page), which is as down as no answer for the customer."""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        parsed = None
    ready = parsed.get("ready") if isinstance(parsed, dict) else None
    if status == 200 and ready is True:
        return True, ""
    if status == 503 and ready is False:
        failing = parsed.get("failing") if isinstance(parsed, dict) else None
        named = ", ".join(str(f) for f in failing) if isinstance(failing, list) else ""
        return False, f"gateway not ready{f': {named}' if named else ''} (HTTP 503)"
    if ready is None:
        return False, f"HTTP {status} without a readiness answer (not the gateway)"
    return False, f"HTTP {status}, ready={json.dumps(ready)}"


def _root_cause(exc: BaseException) -> BaseException:
    """httpx wraps httpcore's exception, which wraps the socket's or TLS's: the innermost
    OSError says most (a refused connection, an untrusted certificate)."""
    found: BaseException = exc
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            found = current
        current = current.__cause__ or current.__context__
    return found


def classify_error(exc: BaseException, target: ProbeTarget, timeout_s: float) -> str:
    """One line saying why no answer came (never a traceback, never a header or body)."""
    where = target.address or target.host
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        phase = "connect" if isinstance(exc, httpx.ConnectTimeout) else "answer"
        return f"no {phase} from {where} within {timeout_s:g} s"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where} closed the connection without an answer"
    cause = _root_cause(exc)
    if isinstance(cause, OSError):
        return failure_reason(cause, where, target.host)
    return f"{type(exc).__name__} talking to {where}"


def trust(ca_pem: str | None = None) -> ssl.SSLContext:
    """The certificates a probe accepts: the system roots, or only `ca_pem` (the sandbox's CA)."""
    return ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()


async def _probe_one(
    client: httpx.AsyncClient,
    gate: asyncio.Semaphore,
    target: ProbeTarget,
    timeout_s: float,
    wall: Callable[[], float],
) -> ProbeResult:
    async with gate:
        at, start = wall(), time.perf_counter()
        extensions = {"sni_hostname": target.host} if target.address else {}
        headers = {"Host": target.host_header, "Connection": "close"}
        try:
            # The per-box deadline covers the whole exchange: httpx's own timeouts are per
            # phase, so a box dripping its answer byte by byte would outlast them.
            async with asyncio.timeout(timeout_s):
                req = client.build_request(
                    "GET", target.url, headers=headers, extensions=extensions
                )
                response = await client.send(req, stream=True)
                try:
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BODY_BYTES:
                            break
                finally:
                    await response.aclose()
        except (httpx.HTTPError, OSError, TimeoutError, ssl.SSLError) as exc:
            latency = time.perf_counter() - start
            reason = classify_error(exc, target, timeout_s)
            return ProbeResult(target.agent, False, None, latency, reason, at)
        latency = time.perf_counter() - start
        ok, reason = classify_answer(response.status_code, body[:MAX_BODY_BYTES])
        return ProbeResult(target.agent, ok, response.status_code, latency, reason, at)


async def sweep(
    targets: Sequence[ProbeTarget],
    *,
    concurrency: int = 200,
    timeout_s: float = 5.0,
    connect_timeout_s: float = 3.0,
    verify: ssl.SSLContext | None = None,
    wall: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[ProbeResult]:
    """Probe every target, at most `concurrency` at a time; results in the targets' order.

    Every box is a distinct host, so no connection is kept alive for reuse (it would only hold
    a file descriptor and a slot of the pool until the next sweep, a minute later). Proxy and
    netrc settings from the environment are ignored: they would change what a probe measures.
    `transport` replaces the network (unit tests of the concurrency bound and the deadline).
    """
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        verify=verify or trust(),
        limits=limits,
        timeout=timeout,
        trust_env=False,
        transport=transport,
    ) as client:
        return list(
            await asyncio.gather(*(_probe_one(client, gate, t, timeout_s, wall) for t in targets))
        )


def run_sweep(targets: Sequence[ProbeTarget], **options: object) -> list[ProbeResult]:
    """`sweep` from synchronous code (a CLI command, a DBOS step), on a loop of its own.

    Not `asyncio.run`: it leaves the thread with its event loop unset, and code that later asks
    for the thread's loop (Pulumi's runtime does) then fails with "no current event loop"."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(sweep(targets, **options))  # type: ignore[arg-type]
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
