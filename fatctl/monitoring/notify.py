"""`fatctl serve`'s own alert notifications (issue 20): after each health sweep, evaluate the
shipped alert rules over the same series `/metrics` serves, and tell each configured channel
(`notify_channels`: a webhook URL, e-mail) when an alert starts and when it ends.

The decisions are `notify_rules.decide` (pure); this module reads its inputs and records its
outcome. State lives in the audit trail (`audit_events`), no table of its own: an alert's state
is its newest `alert.pending|firing|resolved|cleared` row (actor `notify`, target the alert's
key, e.g. `AgentDown{agent=alpha}`), what a channel was told is its newest
`notify.firing|resolved` row (actor `notify:<channel>`), and each message sent or tried is a
`notify.message` row, which the rate limit counts. Rows are written only on a change, never per
run, so a restart re-sends nothing and the trail says who was told what, and when.

A message is recorded after it was sent: a send that fails leaves the channel's state as it
was, so the next run tries again (it still counts against the window, so a dead receiver is
not hammered). A crash between a send and its record re-sends that one message on the next
run: at least once, as the schedule's replay would anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fatctl.monitoring.metrics import FleetCollector
from fatctl.monitoring.notify_channels import Send, configured, limits
from fatctl.monitoring.notify_rules import (
    FIRING,
    Change,
    Known,
    Message,
    Rule,
    Samples,
    decide,
    evaluate,
    load_rules,
)
from fatctl.monitoring.served import stored_sources
from fatctl.monitoring.store import utc
from fatctl.monitoring.workflows import failed_since
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings

ACTOR = "notify"
STATE_ACTIONS = ("alert.pending", "alert.firing", "alert.resolved", "alert.cleared")
TOLD_ACTIONS = ("notify.firing", "notify.resolved")
MESSAGE_ACTION = "notify.message"


def channel_actor(channel: str) -> str:
    return f"{ACTOR}:{channel}"


def collect_samples(state_url: str) -> Samples:
    """Every sample the fleet collector yields over the state database: what a scrape of
    `fatctl serve`'s /metrics would see at this moment."""
    samples: dict[str, list[tuple[Mapping[str, str], float]]] = {}
    for family in FleetCollector(stored_sources(state_url)).collect():
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def increases(state_url: str, rules: Mapping[str, Rule], now: datetime) -> dict[str, float]:
    """Each `increase(...)` rule's value over its window (failed workflows, from DBOS's table)."""
    found = {}
    for rule in rules.values():
        if rule.form == "increase" and rule.metric == "fatctl_workflows_failed_total":
            found[rule.name] = float(failed_since(state_url, now.timestamp() - rule.window_s))
    return found


_NEWEST = """
SELECT e.actor, e.target, e.action, e.at FROM audit_events e
WHERE e.id IN (SELECT MAX(id) FROM audit_events WHERE action IN :actions GROUP BY actor, target)
"""
_SENT = "SELECT actor, COUNT(*) AS n FROM audit_events WHERE action = :action AND at >= :since " \
        "GROUP BY actor"  # fmt: skip


def _when(value: Any) -> datetime:
    return utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def read_state(db: Engine, channels: Sequence[str], window_start: datetime
               ) -> tuple[dict[str, Known], dict[str, dict[str, str]], dict[str, int]]:  # fmt: skip
    """(alert states, what each channel was last told per alert, messages per channel since
    `window_start`), from the audit trail."""
    from sqlalchemy import bindparam, text

    newest = text(_NEWEST).bindparams(bindparam("actions", expanding=True))
    actions = [*STATE_ACTIONS, *TOLD_ACTIONS]
    with db.connect() as conn:
        rows = conn.execute(newest, {"actions": actions}).all()
        sent_rows = conn.execute(text(_SENT), {"action": MESSAGE_ACTION,
                                               "since": window_start}).all()  # fmt: skip
    known: dict[str, Known] = {}
    told: dict[str, dict[str, str]] = {c: {} for c in channels}
    for actor, target, action, at in rows:
        state = action.split(".", 1)[1]
        if actor == ACTOR and state in ("pending", FIRING):
            known[target] = Known(state, _when(at))
        elif actor.startswith(f"{ACTOR}:") and actor[len(ACTOR) + 1 :] in told:
            told[actor[len(ACTOR) + 1 :]][target] = state
    sent = {c: 0 for c in channels}
    for actor, n in sent_rows:
        if actor.startswith(f"{ACTOR}:") and actor[len(ACTOR) + 1 :] in sent:
            sent[actor[len(ACTOR) + 1 :]] = int(n)
    return known, told, sent


def record_changes(db: Engine, changes: Sequence[Change], now: datetime) -> None:
    from fatctl.state import repo

    if not changes:
        return
    with session_scope(db) as session:
        for change in changes:
            detail: dict[str, object] = {} if change.value is None else {"value": change.value}
            repo.audit(session, actor=ACTOR, action=f"alert.{change.state}", target=change.key,
                       detail=detail, at=now)  # fmt: skip


def record_message(db: Engine, channel: str, message: Message, error: str | None,
                   now: datetime) -> None:  # fmt: skip
    """The message (sent or tried), and when it was sent what the channel now knows."""
    from fatctl.state import repo

    with session_scope(db) as session:
        repo.audit(session, actor=channel_actor(channel), action=MESSAGE_ACTION, target=channel,
                   result="failed" if error else "ok", at=now,
                   detail={"alerts": len(message.notices), "summary": message.summary,
                           **({"error": error} if error else {})})  # fmt: skip
        if error:
            return
        for notice in message.notices:
            repo.audit(session, actor=channel_actor(channel), action=f"notify.{notice.status}",
                       target=notice.key, at=now)  # fmt: skip


def notify_fleet(db: Engine, settings: Settings, *, now: datetime,
                 channels: Mapping[str, Send] | None = None) -> dict[str, int]:  # fmt: skip
    """One run: evaluate, record the alert state changes, send what each channel is due.
    Returns counts for the schedule's audit. Without a channel configured it does nothing
    (and reads nothing): notifications are off."""
    chosen = dict(configured(settings) if channels is None else channels)
    if not chosen:
        return {"notify_channels": 0}
    bounds = limits(settings)
    rules = load_rules()
    url = settings.database_url
    active = evaluate(rules.values(), collect_samples(url), now, increases(url, rules, now))
    known, told, sent = read_state(db, sorted(chosen), now - timedelta(seconds=bounds.window_s))
    plan = decide(rules, active, known, told, sent, bounds.per_window, now)
    record_changes(db, plan.changes, now)
    sent_ok = failed = 0
    for channel, messages in sorted(plan.messages.items()):
        for message in messages:
            error = chosen[channel](message)
            record_message(db, channel, message, error, now)
            sent_ok, failed = (sent_ok + 1, failed) if error is None else (sent_ok, failed + 1)
    return {"notify_channels": len(chosen), "alerts_active": len(active),
            "alert_changes": len(plan.changes), "notified": sent_ok, "notify_failed": failed,
            "notify_held": sum(plan.held.values())}  # fmt: skip
