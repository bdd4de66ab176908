"""`Idempotency-Key` on creates: the same key with the same request gets the same answer and
starts nothing; the same key with another request is refused (422).

A claim is a row inserted before the work, unique per (token, key hash): of two requests
racing with one key, exactly one inserts it, and the other reads it. The winner records the
answer when it has one, or drops the claim when the request failed, so a retry may try again.
A claim whose first request is still running answers 409: the client retries later and then
gets the recorded answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fatctl.service.errors import Conflict, IdempotencyMismatch
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Stored:
    status_code: int
    response: dict[str, Any]


def fingerprint(body: dict[str, Any]) -> str:
    """The request's identity: its JSON with sorted keys (so field order does not matter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def claim(db: Engine, token_id: int, key: str, request_sha256: str) -> Stored | None:
    """None when this request owns the key now; the recorded answer when an earlier request
    with the same body finished; raises for another body, or while the first still runs."""
    from sqlalchemy.exc import IntegrityError

    from fatctl.state.models import IdempotencyKey

    row = IdempotencyKey(token_id=token_id, key_sha256=_key_hash(key),
                         request_sha256=request_sha256)  # fmt: skip
    try:
        with session_scope(db) as session:
            session.add(row)
        return None
    except IntegrityError:
        pass
    earlier = _find(db, token_id, key)
    if earlier is None:  # dropped between our insert and our read: the earlier one failed
        return claim(db, token_id, key, request_sha256)
    if earlier.request_sha256 != request_sha256:
        raise IdempotencyMismatch("this Idempotency-Key was used with another request body")
    if earlier.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still running: retry shortly")
    return Stored(earlier.status_code, json.loads(earlier.response))


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
