"""Retry pacing and the rate budget, with fake clocks and recorded sleeps."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from fatctl.infra.engine import Timing
from fatctl.infra.retry import RateBudget, Transient, backoff, call_with_retry, server_wait

NOW = 1_800_000_000.0


def test_server_wait_forms() -> None:
    assert server_wait({"Retry-After": "12"}, NOW) == 12.0
    date = format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)
    assert server_wait({"retry-after": date}, NOW) == pytest.approx(30.0)
    assert server_wait({"RateLimit-Reset": str(int(NOW + 90))}, NOW) == 90.0  # Hetzner: epoch
    assert server_wait({"RateLimit-Reset": "45"}, NOW) == 45.0  # IETF draft: delta seconds
    assert server_wait({"Retry-After": "soon"}, NOW) is None
    assert server_wait({}, NOW) is None


def test_backoff_prefers_the_server_hint_and_caps() -> None:
    timing = Timing(retry_base=1.0, retry_cap=10.0)
    assert [backoff(timing, n, None) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert backoff(timing, 1, 7.0) == 7.0
    assert backoff(timing, 1, 500.0) == 10.0
    assert backoff(Timing.instant(), 3, 30.0) == 0.0


def test_call_with_retry_retries_transients_then_gives_up() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return "ok"

    def classify(exc: BaseException) -> Transient | None:
        return Transient("connection", "reset", 2.0) if isinstance(exc, ConnectionError) else None

    timing = Timing(retry_base=1.0, retry_cap=60.0, retry_attempts=5)
    assert call_with_retry(flaky, timing=timing, classify=classify, sleep=sleeps.append) == "ok"
    assert sleeps == [2.0, 2.0]

    def always() -> str:
        raise ConnectionError("down")

    with pytest.raises(Transient):
        call_with_retry(always, timing=timing, classify=classify, sleep=sleeps.append)

    def fatal() -> str:
        raise ValueError("bad input")

    sleeps.clear()
    with pytest.raises(ValueError):
        call_with_retry(fatal, timing=timing, classify=classify, sleep=sleeps.append)
    assert sleeps == []


def test_budget_paces_only_near_exhaustion() -> None:
    clock = [NOW]
    budget = RateBudget("t", reserve=0.1, clock=lambda: clock[0])
    assert budget.delay() == 0.0  # nothing observed yet
    budget.observe(
        200,
        {
            "RateLimit-Limit": "3600",
            "RateLimit-Remaining": "3000",
            "RateLimit-Reset": str(int(NOW + 600)),
        },
    )
    assert budget.delay() == 0.0
    budget.observe(
        200,
        {
            "RateLimit-Limit": "3600",
            "RateLimit-Remaining": "100",
            "RateLimit-Reset": str(int(NOW + 600)),
        },
    )
    assert budget.delay() == pytest.approx(6.0)  # 600 s left spread over 100 calls
    sleeps: list[float] = []
    budget.pace(sleeps.append)
    view = budget.view()
    assert sleeps == [pytest.approx(6.0)] and view.throttled_s == pytest.approx(6.0)
    assert (view.limit, view.remaining, view.requests_seen) == (3600, 100, 2)
    assert view.reset_in_s == pytest.approx(600.0)


def test_budget_remembers_retry_after_only_for_retryable_statuses() -> None:
    budget = RateBudget("t", clock=lambda: NOW)
    budget.observe(429, {"Retry-After": "9"})
    assert budget.last_wait_hint == 9.0
    budget.observe(200, {"Retry-After": "9"})
    assert budget.last_wait_hint is None
