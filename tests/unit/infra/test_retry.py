"""Retry pacing and the rate budget, with fake clocks and recorded sleeps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from fatctl.pacing.retry import RateBudget, Transient, backoff, call_with_retry, server_wait
from fatctl.pacing.timing import Timing

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


def headers(remaining: int, reset_in: float, limit: int = 3600) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(int(NOW + reset_in)),
    }


def test_budget_paces_only_near_exhaustion() -> None:
    clock = [NOW]
    budget = RateBudget("t", reserve=0.1, clock=lambda: clock[0])
    assert budget.delay() == 0.0 and budget.take() == 0.0  # nothing observed yet
    budget.landed()
    budget.observe(200, headers(3000, 600))  # 600 missing, full in 600 s: 1 token/s
    assert budget.rate == pytest.approx(1.0)
    assert budget.delay() == 0.0
    budget.observe(200, headers(100, 3500))  # the bigger deficit refines the rate
    assert budget.rate == pytest.approx(1.0)
    # 100 left, 360 (10%) kept in reserve: the next request waits for 261 tokens' refill.
    assert budget.delay() == pytest.approx(261.0)
    sleeps: list[float] = []
    budget.pace(sleeps.append)
    view = budget.view()
    assert sleeps == [pytest.approx(261.0)] and view.throttled_s == pytest.approx(261.0)
    assert (view.limit, view.remaining, view.requests_seen) == (3600, 100, 2)
    assert view.reset_in_s == pytest.approx(3500.0)


def test_budget_hands_concurrent_callers_successive_slots() -> None:
    """Fifty threads near the limit do not all fire at once: each gets the next slot."""
    clock = [NOW]
    budget = RateBudget("t", reserve=0.05, clock=lambda: clock[0])
    budget.observe(200, headers(30, 70, limit=100))  # 1 token/s, 30 left, 5 in reserve
    waits = [budget.take() for _ in range(30)]
    assert waits[:25] == [0.0] * 25  # requests in flight count before their answers arrive
    assert waits[25:] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0])
    clock[0] += 10.0  # ten tokens refilled since
    assert budget.take() == 0.0


def test_budget_follows_the_server_less_what_is_in_flight() -> None:
    clock = [NOW]
    budget = RateBudget("t", reserve=0.05, clock=lambda: clock[0])
    budget.observe(200, headers(90, 10, limit=100))
    assert budget.take() == 0.0  # one request sent, not yet answered
    budget.observe(429, {**headers(0, 2, limit=100), "Retry-After": "2"})  # another's burst
    assert budget.rate == pytest.approx(1.0)  # the burst's headers do not teach a rate
    assert budget.last_wait_hint == 2.0
    # 0 left and one in flight: wait for the 5 in reserve, the one in flight and this one.
    assert budget.take() == pytest.approx(7.0)
    budget.landed()
    budget.landed()
    budget.observe(200, headers(80, 20, limit=100))  # the server recovered: so do we
    assert budget.take() == 0.0


def test_budget_wait_hints_follow_their_status_and_thread() -> None:
    budget = RateBudget("t", clock=lambda: NOW)
    budget.observe(429, {"Retry-After": "9"})
    assert budget.last_wait_hint == 9.0
    budget.observe(200, {"Retry-After": "9"})
    assert budget.last_wait_hint is None
    # A 5xx's RateLimit-Reset says when the bucket is full, not when to retry; a 429's does.
    budget.observe(503, {"RateLimit-Reset": str(int(NOW + 40))})
    assert budget.last_wait_hint is None
    budget.observe(429, {"RateLimit-Reset": str(int(NOW + 40))})
    assert budget.last_wait_hint == 40.0
    other: list[float | None] = []
    thread = threading.Thread(target=lambda: other.append(budget.last_wait_hint))
    thread.start()
    thread.join()
    assert other == [None]  # another thread's answer is not this thread's hint


def test_a_create_lost_in_doubt_is_recovered_not_repeated() -> None:
    """After an ambiguous failure (connection lost, 5xx) the next attempt first looks for what
    the lost call made; after a refusal (429, locked) it simply tries again."""
    made: list[str] = []
    failures = iter([ConnectionError("lost answer")])

    def create() -> str:
        made.append("server")  # the work happens, then the answer may be lost
        if (exc := next(failures, None)) is not None:
            raise exc
        return "created"

    def classify(exc: BaseException) -> Transient | None:
        return Transient("connection", "lost") if isinstance(exc, ConnectionError) else None

    timing = Timing(retry_base=0.0, retry_cap=0.0, retry_attempts=3)
    found = call_with_retry(create, timing=timing, classify=classify, sleep=lambda s: None,
                            recover=lambda: "adopted" if made else None)  # fmt: skip
    assert found == "adopted" and made == ["server"]

    refused = iter([Transient("locked", "busy")])

    def locked() -> str:
        if (exc := next(refused, None)) is not None:
            raise exc
        return "done"

    looked: list[int] = []
    result = call_with_retry(locked, timing=timing, classify=classify, sleep=lambda s: None,
                             recover=lambda: looked.append(1))  # fmt: skip
    assert result == "done" and looked == []
