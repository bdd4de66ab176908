"""The shared rate budget's arithmetic (`pacing.shared_budget`): grants, queue places, windows,
and that answers only ever lower the shared estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from fatctl.pacing import shared_budget
from fatctl.pacing.budget import STALE_MARGIN_S
from fatctl.pacing.shared_budget import (
    UNKNOWN_REFILL_TRIES,
    UNKNOWN_REFILL_WAIT_S,
    BudgetStore,
    Said,
    Share,
    SharedBudget,
    grant,
    refill,
    sync,
)
from fatctl.state.models import SharedRateBudget

HOUR_BUCKET = Share(quota=3600, tokens=100.0, rate=1.0, stamp=0.0)


def test_above_the_reserve_a_batch_is_granted_at_once() -> None:
    share, n, wait = grant(HOUR_BUCKET, 0.0, 5, reserve=0.0)
    assert (n, wait, share.tokens, share.granted) == (5, 0.0, 95.0, 5)


def test_a_batch_never_dips_under_the_reserve() -> None:
    share = Share(quota=100, tokens=7.0, rate=1.0)
    share, n, wait = grant(share, 0.0, 5, reserve=0.05)  # floor 5: two above it
    assert (n, wait, share.tokens) == (2, 0.0, 5.0)


def test_below_the_reserve_takers_queue_one_refill_apart() -> None:
    """Every process takes its place in one queue: successive takers wait 1/rate longer."""
    share = Share(quota=100, tokens=0.0, rate=2.0)
    waits = []
    for _ in range(3):
        share, n, wait = grant(share, 0.0, 5, reserve=0.0)
        assert n == 1
        waits.append(wait)
    assert waits == [0.5, 1.0, 1.5]
    assert share.waits == 3


def test_the_bucket_refills_at_its_rate_up_to_its_quota() -> None:
    assert refill(Share(quota=10, tokens=0.0, rate=1.0, stamp=0.0), 4.0).tokens == 4.0
    assert refill(Share(quota=10, tokens=0.0, rate=1.0, stamp=0.0), 40.0).tokens == 10.0


def test_a_window_refills_only_after_its_end_and_margin() -> None:
    window = Share(quota=1200, tokens=0.0, reset_at=100.0, span=300.0)
    assert refill(window, 100.0 + STALE_MARGIN_S - 0.1).tokens == 0.0
    full = refill(window, 100.0 + STALE_MARGIN_S)
    assert full.tokens == 1200.0 and full.reset_at == 100.0 + STALE_MARGIN_S + 300.0


def test_below_the_reserve_a_window_queues_for_its_reset_then_later_windows() -> None:
    window = Share(quota=10, tokens=0.0, reset_at=50.0, span=300.0)
    _, n, wait = grant(window, 0.0, 1, reserve=0.0)
    assert n == 1 and wait == pytest.approx(50.0 + STALE_MARGIN_S)
    deep = Share(quota=10, tokens=-10.0, reset_at=50.0, span=300.0)
    _, _, later = grant(deep, 0.0, 1, reserve=0.0)
    assert later == pytest.approx(50.0 + STALE_MARGIN_S + 300.0)


def test_unknown_refill_grants_nothing_below_the_reserve() -> None:
    """A window whose end no answer has said: nothing to queue for."""
    _, n, wait = grant(Share(quota=10, tokens=0.0, span=300.0), 0.0, 1, reserve=0.0)
    assert (n, wait) == (0, UNKNOWN_REFILL_WAIT_S)


def test_a_bucket_with_no_learnt_rate_queues_at_the_assumed_rate() -> None:
    """Review 29, finding 1: the row a 429-first start leaves (tokens under zero, no rate, no
    window) used to grant nothing for ever. Hetzner documents its bucket as "3600 requests per
    hour ... the number of remaining requests will increase by 1 every second" (docs.hetzner.
    cloud, Rate Limiting): a quota refilled over an hour."""
    stalled = Share(quota=3600, tokens=-4.0, stamp=0.0)
    share, n, wait = grant(stalled, 0.0, 5, reserve=0.0)
    assert (n, wait, share.tokens) == (1, 5.0, -5.0)
    assert refill(stalled, 10.0).tokens == 6.0


def _store(tmp_path: Path) -> tuple[Engine, BudgetStore]:
    engine = create_engine(f"sqlite:///{tmp_path / 'budget.db'}")
    SharedRateBudget.__table__.create(engine)  # type: ignore[attr-defined]
    return engine, BudgetStore(engine)


def test_a_fresh_process_takes_after_the_first_answers_were_429s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 1's scenario: one process's first answer is a 429 with nothing left; a new
    process on the same row (a restart, another worker) gets its slot, a wait at the bucket's
    refill, instead of polling the row for ever (the poll's sleep here fails the test)."""
    _, store = _store(tmp_path)
    first = SharedBudget("hetzner", store, reserve=0.0, clock=lambda: 100.0)
    first.pace(sleep=lambda _s: None)
    first.observe(429, {"RateLimit-Limit": "3600", "RateLimit-Remaining": "0",
                        "RateLimit-Reset": "1900"})  # fmt: skip
    row = store.read("hetzner")
    assert row is not None and row.rate is None and row.tokens is not None and row.tokens < 0

    def polled(_s: float) -> None:
        raise AssertionError("polled the row: no refill known")

    monkeypatch.setattr(shared_budget.time, "sleep", polled)
    waited: list[float] = []
    SharedBudget("hetzner", store, reserve=0.0, clock=lambda: 100.0).pace(sleep=waited.append)
    assert waited and 0 < waited[0] <= 10.0


def test_an_unknown_refill_sends_a_probe_after_its_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No row may stall its takers for good: after a bounded number of polls one request goes
    out, and its answer teaches the row (the old loop polled for ever)."""
    engine, store = _store(tmp_path)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO rate_budgets (api, quota, tokens, stamp, span, granted, "
                             "waits) VALUES ('cf', 10, 0, 0, 300, 0, 0)")  # fmt: skip
    polls: list[float] = []

    def poll(s: float) -> None:
        polls.append(s)
        assert len(polls) <= UNKNOWN_REFILL_TRIES, "polled past its tries"

    monkeypatch.setattr(shared_budget.time, "sleep", poll)
    SharedBudget("cf", store, reserve=0.0, clock=lambda: 0.0).pace(sleep=lambda _s: None)
    assert len(polls) == UNKNOWN_REFILL_TRIES


def test_before_any_answer_everything_is_granted() -> None:
    _, n, wait = grant(Share(), 0.0, 5, reserve=0.05)
    assert (n, wait) == (5, 0.0)


def test_an_answer_lowers_the_estimate_but_never_raises_it() -> None:
    said = Said(quota=3600, remaining=50, rate=1.0, reset_at=None, span=None, outstanding=3)
    assert sync(HOUR_BUCKET, 0.0, said).tokens == 47.0
    more = Said(quota=3600, remaining=500, rate=1.0, reset_at=None, span=None, outstanding=0)
    assert sync(HOUR_BUCKET, 0.0, more).tokens == 100.0  # other processes' tokens are not in it
    first = sync(Share(), 0.0, said)
    assert (first.quota, first.tokens, first.rate) == (3600, 47.0, 1.0)


def test_processes_sharing_the_row_never_overdraw_the_server() -> None:
    """Three processes, each sending as soon as its grant's wait is over, against a server
    bucket of 20 refilled at 1/s: the shared queue keeps every request within the bucket (a
    private estimate per process would let each spend the whole bucket)."""
    server, stamp, quota, rate = 20.0, 0.0, 20, 1.0
    share = Share(quota=quota, tokens=20.0, rate=rate, stamp=0.0)
    sends = []
    now = 0.0
    for step in range(120):  # 120 requests asked for within the first 10 seconds
        now = step / 12
        share, n, wait = grant(share, now, 1, reserve=0.0)
        assert n == 1
        sends.append(now + wait)
    refused = 0
    for at in sorted(sends):
        server = min(quota, server + (at - stamp) * rate)
        stamp = at
        if server < 1 - 1e-9:
            refused += 1
        else:
            server -= 1
    assert refused == 0
