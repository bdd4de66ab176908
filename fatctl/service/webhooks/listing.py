"""`fatctl webhooks list|redeliver`: the deliveries as rows, and one more attempt at an event."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from fatctl.config import Settings
from fatctl.secrets import KeyRing
from fatctl.service.webhooks.delivery import attempt, find
from fatctl.state.db import session_scope
from fatctl.state.models import WebhookDelivery

COLUMNS = ("event_id", "kind", "agent", "state", "attempts", "created_at", "next_attempt_at",
           "last_error")  # fmt: skip


def _state(row: WebhookDelivery) -> str:
    if row.delivered_at is not None:
        return "delivered"
    return "dead" if row.dead_at is not None else "pending"


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def deliveries(db: Engine, *, dead_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    """Newest first; `dead_only`: the dead letters."""
    query = select(WebhookDelivery).order_by(col(WebhookDelivery.id).desc()).limit(limit)
    if dead_only:
        query = query.where(col(WebhookDelivery.dead_at).is_not(None))
    with session_scope(db) as session:
        rows = session.exec(query).all()
        return [
            {"event_id": r.event_id, "kind": r.kind, "agent": r.agent or "", "state": _state(r),
             "attempts": r.attempts, "created_at": _iso(r.created_at),
             "next_attempt_at": _iso(r.next_attempt_at), "delivered_at": _iso(r.delivered_at),
             "dead_at": _iso(r.dead_at), "last_error": r.last_error or ""}
            for r in rows
        ]  # fmt: skip


def redeliver(db: Engine, ring: KeyRing, settings: Settings, event_id: str) -> dict[str, Any]:
    """Send the event once more, now, from this process (the same body, a fresh signature);
    a failure leaves it dead, with the new error. An event already delivered is sent again
    too: the platform asked, and drops repeats by id."""
    with session_scope(db) as session:
        row = find(session, event_id)
        row.delivered_at = row.dead_at = None
        session.add(row)
    return attempt(db, ring, settings, event_id, last=True)
