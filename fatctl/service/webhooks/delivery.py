"""Delivering one event: a signed POST (`attempt`), and the durable retries around it
(`deliver_workflow`).

`attempt` is plain code shared by the workflow and `fatctl webhooks redeliver`: it reads the
row, signs the stored body with a fresh timestamp, POSTs it with a short timeout, and records
the outcome in the row (no transaction is held open over the request). A 2xx is delivered; a
410 means the receiver wants no more of these, so it is dead at once; anything else (another
status, a timeout, a refused connection, no URL or secret configured) is retried after an
exponentially growing pause until `Policy.max_attempts`, then dead-lettered.

The workflow is one DBOS workflow per event (id `webhook-<event id>`), whose steps are the
attempts and whose pauses are `DBOS.sleep`: both are checkpointed, so a delivery that was
waiting when `fatctl serve` stopped continues after its restart with the time it had left.
Tests swap the pause (`using`) so nothing waits for real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from dbos import DBOS
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from fatctl import __version__
from fatctl.clock import Clock, wall_clock
from fatctl.config import Settings
from fatctl.errors import ConfigError, NotFound
from fatctl.secrets import KeyRing
from fatctl.service.context import current
from fatctl.service.webhooks import signing
from fatctl.service.webhooks.target import signing_secrets, webhook_url
from fatctl.state.db import session_scope
from fatctl.state.models import WebhookDelivery

DELIVER_WORKFLOW = "webhook_deliver_wf"
GONE = 410


@dataclass(frozen=True)
class Policy:
    """How hard to try: 10 attempts over about 1.4 h by default (10 s, 20 s, ... capped at
    1 h between them), each with a 5 s timeout; `sleep` None is `DBOS.sleep` (durable);
    `clock` None is the caller's (the service's injected clock in `fatctl serve`)."""

    max_attempts: int = 10
    base_s: float = 10.0
    cap_s: float = 3600.0
    timeout_s: float = 5.0
    clock: Clock | None = None
    sleep: Callable[[float], None] | None = None

    def delay(self, attempts_made: int) -> float:
        return min(self.cap_s, self.base_s * 2 ** max(attempts_made - 1, 0))


_policy: list[Policy] = [Policy()]


def policy() -> Policy:
    return _policy[-1]


@contextmanager
def using(chosen: Policy) -> Iterator[Policy]:
    """Deliver under `chosen` inside the block (tests: no real pauses, fewer attempts)."""
    _policy.append(chosen)
    try:
        yield chosen
    finally:
        _policy.remove(chosen)


def find(session: Session, event_id: str) -> WebhookDelivery:
    row = session.exec(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)).first()
    if row is None:
        raise NotFound(f"no webhook event {event_id[:64]!r}")
    return row


def _post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> tuple[int | None, str]:
    """(status, error): the status when an answer came, else a short reason (never the body)."""
    try:
        answer = httpx.post(url, content=body, headers=headers, timeout=timeout_s,
                            follow_redirects=False)  # fmt: skip
    except httpx.TimeoutException:
        return None, f"timed out after {timeout_s:g} s"
    except httpx.HTTPError as exc:
        return None, f"request failed: {type(exc).__name__}"
    if 200 <= answer.status_code < 300:
        return answer.status_code, ""
    return answer.status_code, f"HTTP {answer.status_code}"


def _send(db: Engine, ring: KeyRing, settings: Settings, row: WebhookDelivery,
          now: datetime, timeout_s: float) -> tuple[int | None, str]:  # fmt: skip
    try:
        url = webhook_url(settings)
        if url is None:
            raise ConfigError("FATCTL_WEBHOOK_URL is not set")
        with session_scope(db) as session:
            secrets = [s.reveal().encode() for s in signing_secrets(session, ring, now)]
    except ConfigError as exc:
        return None, exc.message[:200]
    body = row.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"fatctl-webhooks/{__version__}",
        "Fatctl-Event-Id": row.event_id,
        "Fatctl-Event-Type": row.kind,
        signing.HEADER: signing.sign_all(secrets, int(now.timestamp()), body),
    }
    return _post(url, body, headers, timeout_s)


def attempt(db: Engine, ring: KeyRing, settings: Settings, event_id: str, *,
            chosen: Policy | None = None, last: bool = False,
            clock: Clock = wall_clock) -> dict[str, Any]:  # fmt: skip
    """One delivery attempt of the event, recorded in its row; returns the outcome as plain
    JSON: `result` delivered | retry | dead, the status, a short error, the attempts so far and
    the pause before the next (`delay_s`). `last`: a failure dead-letters it (redelivery)."""
    chosen = chosen or policy()
    with session_scope(db) as session:
        row = find(session, event_id)
    if row.delivered_at is not None:
        return {"event_id": event_id, "result": "delivered", "status": None, "error": "",
                "attempts": row.attempts, "delay_s": 0.0}  # fmt: skip
    now = (chosen.clock or clock)()
    status, error = _send(db, ring, settings, row, now, chosen.timeout_s)
    with session_scope(db) as session:
        row = find(session, event_id)
        row.attempts += 1
        if not error:
            result = "delivered"
            row.delivered_at = now
            row.dead_at = row.next_attempt_at = row.last_error = None
        elif status == GONE or last or row.attempts >= chosen.max_attempts:
            result = "dead"
            row.dead_at, row.next_attempt_at, row.last_error = now, None, error
        else:
            result = "retry"
            row.next_attempt_at = now + timedelta(seconds=chosen.delay(row.attempts))
            row.last_error = error
        session.add(row)
        attempts = row.attempts
    delay = chosen.delay(attempts) if result == "retry" else 0.0
    return {"event_id": event_id, "result": result, "status": status, "error": error,
            "attempts": attempts, "delay_s": delay}  # fmt: skip


@DBOS.step(name="webhook_attempt")
def _attempt_step(event_id: str) -> dict[str, Any]:
    rt = current()
    return attempt(rt.db, rt.ring, rt.settings, event_id, clock=rt.clock)


@DBOS.workflow(name=DELIVER_WORKFLOW)
def deliver_workflow(event_id: str) -> dict[str, Any]:
    """Attempt until delivered or dead, pausing between attempts as the step said."""
    while True:
        outcome = _attempt_step(event_id)
        if outcome["result"] != "retry":
            return outcome
        (policy().sleep or DBOS.sleep)(outcome["delay_s"])


def workflow_id(event_id: str) -> str:
    return f"webhook-{event_id}"
