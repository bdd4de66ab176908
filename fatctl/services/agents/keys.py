"""SSH public keys in the database: operator keys fleet-wide, customer keys per agent.

Pushing keys onto boxes is the access service's job (`fatctl.services.common.targets`); this module
decides which keys are wanted, validates them and audits every change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import col, select

from fatctl import validation
from fatctl.domain import KeyRole
from fatctl.errors import BadInput, NotFound
from fatctl.state import repo
from fatctl.state.db import session_scope
from fatctl.state.models import SshKey, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session


def add_key(
    engine: Engine, *, role: KeyRole, public_key: str, label: str, agent: str | None, actor: str
) -> SshKey:
    """Record a key; customer keys need an agent, operator keys must not have one."""
    line, fingerprint = validation.ssh_public_key(public_key)
    label = validation.printable("key label", label)
    if role == KeyRole.CUSTOMER and not agent:
        raise BadInput("a customer key needs --agent NAME")
    if role == KeyRole.OPERATOR and agent:
        raise BadInput("operator keys are fleet-wide: drop --agent")
    comment = line.split(" ", 2)[2] if line.count(" ") >= 2 else ""
    label = label or comment or fingerprint
    with session_scope(engine) as session:
        owner = repo.get_agent(session, agent) if agent else None
        for existing in repo.active_keys(session, agent=owner, role=role):
            if existing.fingerprint == fingerprint:
                raise BadInput(f"key {fingerprint} is already present")
        _refuse_revoked(session, owner.id if owner else None, fingerprint)
        key = SshKey(
            agent_pk=owner.id if owner else None,
            role=role.value,
            label=label[:100],
            public_key=line,
            fingerprint=fingerprint,
        )
        session.add(key)
        session.flush()
        repo.audit(
            session,
            actor=actor,
            action=f"key.add.{role.value}",
            target=agent or "fleet",
            detail={"fingerprint": fingerprint, "label": label[:100]},
        )
    return key


def _refuse_revoked(session: Session, agent_pk: int | None, fingerprint: str) -> None:
    """A revoked key stays revoked: it was usually revoked because it leaked, and the row is
    the record of that (re-adding it also collided with the row's unique constraint)."""
    owner = col(SshKey.agent_pk).is_(None) if agent_pk is None else SshKey.agent_pk == agent_pk
    revoked = session.exec(
        select(SshKey).where(owner, SshKey.fingerprint == fingerprint,
                             col(SshKey.revoked_at).is_not(None))
    ).first()  # fmt: skip
    if revoked is not None:
        raise BadInput(
            f"key {fingerprint} was revoked on {revoked.revoked_at:%Y-%m-%d}: "
            "a revoked key is not re-admitted, make a new one (ssh-keygen -t ed25519)"
        )


def list_keys(engine: Engine, *, agent: str | None, include_revoked: bool = False) -> list[SshKey]:
    with session_scope(engine) as session:
        query = select(SshKey).order_by(col(SshKey.id))
        if agent:
            query = query.where(SshKey.agent_pk == repo.get_agent(session, agent).id)
        if not include_revoked:
            query = query.where(col(SshKey.revoked_at).is_(None))
        return list(session.exec(query).all())


def revoke_key(engine: Engine, *, fingerprint: str, agent: str | None, actor: str) -> SshKey:
    """Mark a key revoked (kept for the audit trail); matching on the fingerprint."""
    with session_scope(engine) as session:
        owner = repo.get_agent(session, agent) if agent else None
        role = KeyRole.CUSTOMER if owner else KeyRole.OPERATOR
        for key in repo.active_keys(session, agent=owner, role=role):
            if key.fingerprint == fingerprint:
                key.revoked_at = utcnow()
                session.add(key)
                repo.audit(
                    session,
                    actor=actor,
                    action=f"key.revoke.{role.value}",
                    target=agent or "fleet",
                    detail={"fingerprint": fingerprint},
                )
                return key
    raise NotFound(f"no active key {fingerprint} for {agent or 'the fleet'}")
