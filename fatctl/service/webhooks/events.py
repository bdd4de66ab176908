"""Events for the platform: what happened, recorded as a delivery row, and its delivery started.

An event is `{id, type, created_at, agent, data}` as compact JSON, kept verbatim in its row so
every attempt (and a redelivery) sends the same bytes. Ids are stable where the event has a
natural source (`provision-alpha-3:agent.ready`): the event a replayed workflow step records
again is the same row, and a platform that saw it once can drop the repeat by its id.

Nothing is recorded when no webhook URL is configured: the table is an outbox, not a log.
`data` must hold no secret; callers pass states, ids and addresses, never values.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from dbos import DBOS, SetWorkflowID
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from fatctl.clock import wall_clock
from fatctl.config import Settings
from fatctl.errors import BadInput, StateError
from fatctl.service.context import current
from fatctl.service.webhooks.delivery import deliver_workflow, workflow_id
from fatctl.state.db import session_scope
from fatctl.state.models import WebhookDelivery

AGENT_READY = "agent.ready"
AGENT_DEGRADED = "agent.degraded"
# A platform that shows a customer "degraded" must learn when to stop: without this it would
# poll every degraded agent. Sent when a sweep sees an agent pass after a failing probe.
AGENT_RECOVERED = "agent.recovered"
AGENT_DESTROYED = "agent.destroyed"
ROLLOUT_FINISHED = "rollout.finished"
KINDS = (AGENT_READY, AGENT_DEGRADED, AGENT_RECOVERED, AGENT_DESTROYED, ROLLOUT_FINISHED)

_NAMESPACE = uuid.UUID("5f0c8a52-2a53-4c47-9f55-3f3c3c8e8a19")  # fatctl's events, fixed forever


def event_id_for(source: str | None) -> str:
    """`evt_<32 hex>`: derived from `source` when the event has one, else random."""
    made = uuid.uuid5(_NAMESPACE, source) if source else uuid.uuid4()
    return f"evt_{made.hex}"


def payload(event_id: str, kind: str, agent: str | None, data: dict[str, Any],
            created_at: datetime) -> str:  # fmt: skip
    doc = {"id": event_id, "type": kind, "created_at": created_at.isoformat(), "agent": agent,
           "data": data}  # fmt: skip
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def record(session: Session, settings: Settings, kind: str, agent: str | None,
           data: dict[str, Any], *, source: str | None = None,
           now: datetime | None = None) -> str | None:  # fmt: skip
    """Record the event in the caller's transaction; returns its id, or None when no webhook
    is configured. Recording a sourced event again returns the first one's id."""
    if kind not in KINDS:
        raise BadInput(f"unknown webhook event {kind!r}: one of {', '.join(KINDS)}")
    if not settings.webhook_url:
        return None  # a malformed URL is still recorded: its attempts fail and say why
    event_id = event_id_for(source)
    query = select(WebhookDelivery.id).where(WebhookDelivery.event_id == event_id)
    if session.exec(query).first() is not None:
        return event_id
    at = now or wall_clock()
    session.add(WebhookDelivery(event_id=event_id, kind=kind, agent=agent,
                                payload=payload(event_id, kind, agent, data, at), created_at=at,
                                next_attempt_at=at))  # fmt: skip
    session.flush()
    return event_id


def start_delivery(event_id: str) -> bool:
    """Start the event's delivery workflow in this process if `fatctl serve` runs here (a second
    start of one event attaches to the first); False elsewhere: the row waits, undelivered, for
    `fatctl webhooks redeliver`."""
    try:
        current()
    except StateError:
        return False
    with SetWorkflowID(workflow_id(event_id)):
        DBOS.start_workflow(deliver_workflow, event_id)
    return True


def emit(db: Engine, settings: Settings, kind: str, agent: str | None, data: dict[str, Any], *,
         source: str | None = None) -> str | None:  # fmt: skip
    """Record the event in a transaction of its own and start its delivery."""
    with session_scope(db) as session:
        event_id = record(session, settings, kind, agent, data, source=source)
    if event_id is not None:
        start_delivery(event_id)
    return event_id


@DBOS.step(name="webhook_record")
def _record_step(kind: str, agent: str | None, data: dict[str, Any], source: str) -> str | None:
    rt = current()
    with session_scope(rt.db) as session:
        return record(session, rt.settings, kind, agent, data, source=source, now=rt.clock())


def emit_in_workflow(
    kind: str, agent: str | None, data: dict[str, Any], *, key: str = ""
) -> str | None:
    """`emit` from inside a DBOS workflow: recording is a step, its id comes from the workflow
    (a recovered workflow records nothing twice), and the delivery is its child workflow.
    `key` tells apart several events of one kind from one workflow (a sweep's agents)."""
    source = f"{DBOS.workflow_id}:{kind}" + (f":{key}" if key else "")
    event_id = _record_step(kind, agent, data, source)
    if event_id is not None:
        start_delivery(event_id)
    return event_id
