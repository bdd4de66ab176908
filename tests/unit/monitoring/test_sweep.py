"""The sweep's own promises, with httpx's mock transport in place of the network: never more
than `concurrency` requests at once, a deadline per box that a stuck box cannot stretch, the
name sent as Host and SNI when an address is given, and no connection kept alive."""

from __future__ import annotations

import asyncio

import httpx

from fatctl.monitoring.probe import ProbeTarget, run_sweep, sweep


def targets(n: int) -> list[ProbeTarget]:
    return [ProbeTarget(f"a{i}", f"a{i}.fleet.test", address="127.0.0.1") for i in range(n)]


def test_no_more_than_concurrency_requests_are_in_flight() -> None:
    in_flight, peak, seen = 0, 0, []

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        seen.append((request.headers["host"], request.extensions.get("sni_hostname"),
                     request.headers["connection"]))  # fmt: skip
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"ready": True})

    found = asyncio.run(sweep(targets(20), concurrency=3, transport=httpx.MockTransport(handler)))
    assert peak == 3
    assert [r.agent for r in found] == [f"a{i}" for i in range(20)]
    assert all(r.ok for r in found)
    assert ("a7.fleet.test", "a7.fleet.test", "close") in seen


def test_a_stuck_box_costs_its_own_deadline_only() -> None:
    stuck = asyncio.Event()  # never set

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"].startswith("a0."):
            await stuck.wait()
        return httpx.Response(503, json={"ready": False})

    found = asyncio.run(sweep(targets(3), timeout_s=0.05, transport=httpx.MockTransport(handler)))
    assert [(r.ok, r.status, r.reason) for r in found] == [
        (False, None, "no answer from 127.0.0.1 within 0.05 s"),
        (False, 503, "gateway not ready (HTTP 503)"),
        (False, 503, "gateway not ready (HTTP 503)"),
    ]


def test_a_target_without_address_sends_no_sni_override() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.extensions.get("sni_hostname")))
        return httpx.Response(200, json={"ready": True})

    asyncio.run(sweep([ProbeTarget("b", "b.fleet.test")], transport=httpx.MockTransport(handler)))
    assert seen == [("https://b.fleet.test/readyz", None)]


def test_run_sweep_leaves_the_threads_event_loop_alone() -> None:
    """`fatctl status` sweeps from synchronous code; `asyncio.run` there left the thread with
    no event loop, and Pulumi's runtime, later in the same process, failed for want of one."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ready": True})

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        found = run_sweep(targets(2), transport=httpx.MockTransport(handler))
        assert len(found) == 2
        assert asyncio.get_event_loop_policy().get_event_loop() is loop
    finally:
        loop.close()
        asyncio.set_event_loop(asyncio.new_event_loop())  # as usable as the thread's default
