"""Repositories: the queries and mutations services use, so no SQL is scattered across fatctl.

Functions take an open session and never commit (the caller's `session_scope` does), so a
service can make several changes and an audit event in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from fatctl.domain import AgentState, can_transition
from fatctl.errors import BadInput, NotFound, StateError
from fatctl.state.models import (
    Agent,
    AuditEvent,
    Backup,
    Channel,
    HostKey,
    Owner,
    Sender,
    SshKey,
    utcnow,
)


def get_or_create_owner(session: Session, email: str, plan: str) -> Owner:
    owner = session.exec(select(Owner).where(Owner.email == email)).first()
    if owner is None:
        # Two creates for one new owner at once (the API's workers): INSERT ... ON CONFLICT DO
        # NOTHING waits for the other insert's transaction and then leaves its row, which both
        # read back. Not a savepoint: pysqlite's do not nest inside its transaction, so a
        # refused provision's rollback kept the owner (tests/integration/provision/
        # test_refusals.py); this insert is undone with the rest of the transaction.
        insert = (
            postgres_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        fresh = Owner(email=email, plan=plan).model_dump(exclude={"id"})  # with its defaults
        session.execute(insert(Owner).values(**fresh)
                        .on_conflict_do_nothing(index_elements=["email"]))  # fmt: skip
        owner = session.exec(select(Owner).where(Owner.email == email)).one()
    if owner.plan != plan:
        raise BadInput(f"owner {email} is on plan {owner.plan}, not {plan}")
    return owner


def agent_exists(session: Session, name: str) -> bool:
    return session.exec(select(Agent.id).where(Agent.name == name)).first() is not None


def get_agent(session: Session, name: str) -> Agent:
    agent = session.exec(select(Agent).where(Agent.name == name)).first()
    if agent is None:
        raise NotFound(f"no agent named {name!r}", hint="see `fatctl agents list`")
    return agent


def owner_of(session: Session, agent: Agent) -> Owner:
    owner = session.get(Owner, agent.owner_id)
    if owner is None:  # foreign keys make this impossible short of manual edits
        raise StateError(f"agent {agent.name} has no owner row")
    return owner


def list_agents(
    session: Session, *, states: Sequence[str] = (), names: Sequence[str] = ()
) -> list[Agent]:
    query = select(Agent).order_by(col(Agent.name))
    if states:
        query = query.where(col(Agent.state).in_(states))
    if names:
        query = query.where(col(Agent.name).in_(names))
    return list(session.exec(query).all())


def set_state(session: Session, agent: Agent, target: AgentState, error: str = "") -> None:
    """Move an agent along the state machine; an illegal move is a bug or a race, not ignored."""
    current = AgentState(agent.state)
    if not can_transition(current, target):
        raise StateError(f"agent {agent.name} cannot go from {current} to {target}")
    agent.state = target.value
    agent.last_error = error[:500]
    agent.updated_at = utcnow()
    session.add(agent)


def host_keys(session: Session, agent: Agent) -> list[HostKey]:
    return list(session.exec(select(HostKey).where(HostKey.agent_pk == agent.id)).all())


def active_keys(session: Session, *, agent: Agent | None, role: str) -> list[SshKey]:
    """Unrevoked keys of a role: per agent for customers, fleet-wide (agent None) for operators."""
    query = select(SshKey).where(SshKey.role == role, col(SshKey.revoked_at).is_(None))
    query = query.where(
        SshKey.agent_pk == agent.id if agent is not None else col(SshKey.agent_pk).is_(None)
    )
    return list(session.exec(query.order_by(col(SshKey.id))).all())


def channels(session: Session, agent: Agent) -> list[Channel]:
    """The channels the agent answers on, by kind."""
    query = select(Channel).where(Channel.agent_pk == agent.id)
    return list(session.exec(query.order_by(col(Channel.kind))).all())


def senders(session: Session, agent: Agent) -> list[Sender]:
    """Who may talk to the agent, by kind then id."""
    query = select(Sender).where(Sender.agent_pk == agent.id)
    return list(session.exec(query.order_by(col(Sender.kind), col(Sender.value))).all())


def record_backup(session: Session, agent: Agent, backup: Backup) -> Backup:
    """Remember a state backup of `agent`; the same object key twice updates the one row (a
    listing of R2 and a `backup now` may both report it). Keys are relative to the agent's own
    prefix, so another agent's backup of the same name is another row."""
    mine = (Backup.agent_pk == agent.id) & (Backup.object_key == backup.object_key)
    row = session.exec(select(Backup).where(mine)).first()
    if row is None:
        row = backup
    else:
        for field in ("kind", "created_at", "size_bytes", "sha256", "runtime_version"):
            setattr(row, field, getattr(backup, field))
    row.agent_pk = agent.id or 0
    session.add(row)
    session.flush()
    return row


def backups_of(session: Session, agent: Agent) -> list[Backup]:
    """The agent's known state backups, newest first."""
    query = select(Backup).where(Backup.agent_pk == agent.id)
    return list(session.exec(query.order_by(col(Backup.created_at).desc())).all())


AUDIT_DETAIL_MAX = 2000


def _cut(value: object, budget: int) -> object:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= budget else text[:budget] + "..."


def bounded_detail(detail: dict[str, object], limit: int = AUDIT_DETAIL_MAX) -> str:
    """`detail` as JSON of at most `limit` characters that still parses: long values are cut
    (marked with an ellipsis), never the JSON text itself, which `audit --json` must read."""
    text = json.dumps(detail, sort_keys=True, default=str)
    budget = limit
    while len(text) > limit and budget > 16:
        budget //= 2
        text = json.dumps({k: _cut(v, budget) for k, v in detail.items()}, sort_keys=True)
    if len(text) > limit:  # too many keys even with short values: say so instead
        text = json.dumps({"truncated": True, "keys": len(detail)})
    return text


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    result: str = "ok",
    detail: dict[str, object] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append an audit event. `detail` must not hold secrets: callers pass names, never values.

    `at` is the flow's own instant when it decided by an injected clock, so the trail says
    the time the decision was made against; without it the event takes the wall clock.
    """
    event = AuditEvent(
        actor=actor,
        action=action,
        target=target,
        result=result,
        detail=bounded_detail(detail or {}),
        at=at or utcnow(),
    )
    session.add(event)
    return event


def audit_trail(
    session: Session, *, target: str | None = None, limit: int = 100
) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if target:
        query = query.where(AuditEvent.target == target)
    return list(session.exec(query).all())
