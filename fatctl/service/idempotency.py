"""`Idempotency-Key` on creates: the same key with the same request gets the same answer and
starts nothing; the same key with another request is refused (422).

A claim is a row inserted before the work, unique per (token, key hash): of two requests
racing with one key, exactly one inserts it, and the other reads it. The winner records the
answer when it has one, or drops the claim when the request failed, so a retry may try again.
A request that finds the claim of a first one still running waits for its answer (a create
records and enqueues in well under a second) and returns it; past `SETTLE_WAIT_S` it answers
409 and the client retries later. A claim left unanswered for `STALE_CLAIM_S` (its process
died between claiming and answering) is taken over by the next request with the key, which
runs the create again: the agent's name and the workflow's id make that safe.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from fatctl.clock import Clock, wall_clock
from fatctl.pacing.poll import Poll
from fatctl.service.errors import Conflict, IdempotencyMismatch
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

MAX_KEY_LENGTH = 200
SETTLE_WAIT_S = 10.0
STALE_CLAIM_S = 300.0
SETTLE_POLL = Poll(0.05)


@dataclass(frozen=True)
class Stored:
    status_code: int
    response: dict[str, Any]


def fingerprint(body: dict[str, Any]) -> str:
    """The request's identity: its JSON with sorted keys (so field order does not matter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def claim(
    db: Engine,
    token_id: int,
    key: str,
    request_sha256: str,
    *,
    poll: Poll = SETTLE_POLL,
    clock: Clock = wall_clock,
) -> Stored | None:
    """None when this request owns the key now; the recorded answer when an earlier request
    with the same body answered; raises for another body, or while the first still runs."""
    from sqlalchemy.exc import IntegrityError

    from fatctl.state.models import IdempotencyKey

    row = IdempotencyKey(token_id=token_id, key_sha256=_key_hash(key),
                         request_sha256=request_sha256, created_at=clock())  # fmt: skip
    try:
        with session_scope(db) as session:
            session.add(row)
        return None
    except IntegrityError:
        pass
    deadline = poll.deadline(SETTLE_WAIT_S)
    while (earlier := _find(db, token_id, key)) is not None:
        if earlier.request_sha256 != request_sha256:
            raise IdempotencyMismatch("this Idempotency-Key was used with another request body")
        if earlier.status_code is not None:
            return Stored(earlier.status_code, json.loads(earlier.response))
        if _take_over_stale(db, earlier, clock):
            return None
        if poll.expired(deadline):
            raise Conflict("a request with this Idempotency-Key is still running: retry shortly")
        poll.pause()
    # Dropped while we looked: the earlier request failed, so this one may run.
    return claim(db, token_id, key, request_sha256, poll=poll, clock=clock)


def _take_over_stale(db: Engine, earlier: Any, clock: Clock) -> bool:
    """Take an unanswered claim older than `STALE_CLAIM_S`; of several takers, one wins (the
    update matches only the row as it was read)."""
    from sqlalchemy import update

    from fatctl.state.models import IdempotencyKey

    now = clock()
    created = (
        earlier.created_at if earlier.created_at.tzinfo else earlier.created_at.replace(tzinfo=UTC)
    )
    if now - created < timedelta(seconds=STALE_CLAIM_S):
        return False
    table = IdempotencyKey.__table__  # type: ignore[attr-defined]
    with session_scope(db) as session:
        taken = session.execute(update(table).where(
            table.c.id == earlier.id, table.c.created_at == earlier.created_at,
            table.c.status_code.is_(None)).values(created_at=now))  # fmt: skip
        return bool(taken.rowcount)  # type: ignore[attr-defined]


def settle(db: Engine, token_id: int, key: str, stored: Stored, agent: str) -> None:
    """Record the answer the claim's request gave."""
    with session_scope(db) as session:
        row = _row(session, token_id, key)
        if row is not None:
            row.status_code, row.agent = stored.status_code, agent
            row.response = json.dumps(stored.response, sort_keys=True)
            session.add(row)


def drop(db: Engine, token_id: int, key: str) -> None:
    """Forget a claim whose request failed: a retry with the key runs again."""
    with session_scope(db) as session:
        row = _row(session, token_id, key)
        if row is not None:
            session.delete(row)


def _find(db: Engine, token_id: int, key: str) -> Any:
    with session_scope(db) as session:
        row = _row(session, token_id, key)
        if row is not None:
            session.expunge(row)
        return row


def _row(session: Any, token_id: int, key: str) -> Any:
    from sqlmodel import select

    from fatctl.state.models import IdempotencyKey

    query = select(IdempotencyKey).where(IdempotencyKey.token_id == token_id,
                                         IdempotencyKey.key_sha256 == _key_hash(key))  # fmt: skip
    return session.exec(query).first()
