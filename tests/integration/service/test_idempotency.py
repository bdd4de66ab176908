"""Idempotency-Key claims on SQLite and PostgreSQL: one request owns a key; the same body gets
the recorded answer (waiting for a first request still running), another body is refused, a
failed request's claim is dropped, and a claim its process abandoned is taken over once stale."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from fatctl.clock import fixed, wall_clock
from fatctl.pacing.poll import Poll
from fatctl.service import idempotency
from fatctl.service.errors import Conflict, IdempotencyMismatch
from fatctl.service.tokens import create_token

ANSWER = idempotency.Stored(202, {"agent": {"name": "alpha"}, "workflow_id": "provision-alpha-1"})


def never_answered() -> Poll:
    """A wait whose clock jumps a minute per read: it gives up after one look."""
    minutes = itertools.count(step=60)
    return Poll(1, sleep=lambda s: None, clock=lambda: float(next(minutes)))


def token_id(db: Any) -> int:
    return create_token(db, "platform", ["agents:write"], None, "test")[1].id


def test_same_body_gets_the_recorded_answer_other_body_422(migrated_engine: Any) -> None:
    tid, sha = token_id(migrated_engine), idempotency.fingerprint({"name": "alpha"})
    assert idempotency.claim(migrated_engine, tid, "k1", sha) is None
    idempotency.settle(migrated_engine, tid, "k1", ANSWER, "alpha")
    assert idempotency.claim(migrated_engine, tid, "k1", sha) == ANSWER
    with pytest.raises(IdempotencyMismatch):
        idempotency.claim(migrated_engine, tid, "k1", idempotency.fingerprint({"name": "beta"}))


def test_a_running_first_request_is_waited_for_then_409(migrated_engine: Any) -> None:
    tid, sha = token_id(migrated_engine), idempotency.fingerprint({"name": "alpha"})
    assert idempotency.claim(migrated_engine, tid, "k2", sha) is None
    settled: list[float] = []

    def settle_on_first_pause(_: float) -> None:  # the first request answers while we wait
        if not settled:
            settled.append(1)
            idempotency.settle(migrated_engine, tid, "k2", ANSWER, "alpha")

    waited = Poll(0, sleep=settle_on_first_pause)
    assert idempotency.claim(migrated_engine, tid, "k2", sha, poll=waited) == ANSWER

    assert idempotency.claim(migrated_engine, tid, "k3", sha) is None
    with pytest.raises(Conflict, match="still running"):
        idempotency.claim(migrated_engine, tid, "k3", sha, poll=never_answered())


def test_dropped_and_stale_claims_run_again(migrated_engine: Any) -> None:
    tid, sha = token_id(migrated_engine), idempotency.fingerprint({"name": "alpha"})
    assert idempotency.claim(migrated_engine, tid, "k4", sha) is None
    idempotency.drop(migrated_engine, tid, "k4")  # the request failed
    assert idempotency.claim(migrated_engine, tid, "k4", sha) is None

    later = fixed(wall_clock() + timedelta(seconds=idempotency.STALE_CLAIM_S + 1))
    assert idempotency.claim(migrated_engine, tid, "k4", sha, clock=later) is None
    with pytest.raises(Conflict):  # taken over just now: no longer stale
        idempotency.claim(migrated_engine, tid, "k4", sha, clock=later, poll=never_answered())
