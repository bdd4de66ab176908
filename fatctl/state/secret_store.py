"""Secrets in the database: sealed on the way in, opened only where they are used.

The associated data of every ciphertext is the record's identity (`agent:<pk>/<name>` or
`global/<name>`), so copying a ciphertext onto another row makes it undecryptable.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from fatctl.errors import NotFound, SecretError
from fatctl.secrets import KeyRing, Sealed, open_sealed, rewrap, seal
from fatctl.sensitive import Sensitive
from fatctl.state.models import Secret, utcnow


def context_of(agent_pk: int | None, name: str) -> str:
    return f"agent:{agent_pk}/{name}" if agent_pk is not None else f"global/{name}"


def _find(session: Session, agent_pk: int | None, name: str) -> Secret | None:
    query = select(Secret).where(Secret.name == name)
    query = query.where(
        Secret.agent_pk == agent_pk if agent_pk is not None else col(Secret.agent_pk).is_(None)
    )
    return session.exec(query).first()


def put(
    session: Session,
    ring: KeyRing,
    *,
    agent_pk: int | None,
    name: str,
    value: Sensitive,
    expires_at: datetime | None = None,
) -> Secret:
    """Create or replace a secret (refused under a master key the database does not know)."""
    check_ring_known(session, ring)
    sealed = seal(value, ring, context_of(agent_pk, name))
    row = _find(session, agent_pk, name)
    if row is None:
        row = Secret(agent_pk=agent_pk, name=name, key_id="", wrapped_key=b"", ciphertext=b"")
    row.key_id = sealed.key_id
    row.wrapped_key = sealed.wrapped_key
    row.ciphertext = sealed.ciphertext
    row.expires_at = expires_at
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def check_ring_known(session: Session, ring: KeyRing) -> None:
    """Refuse to seal anything when the database holds secrets and none of them was sealed
    under a key of `ring`: a mistyped or foreign FATCTL_MASTER_KEY would otherwise seal new
    secrets that no configured key set can open together with the old ones."""
    stored: set[str] = set(session.exec(select(Secret.key_id).distinct()).all())
    known = {ring.current.key_id, *(k.key_id for k in ring.previous)}
    if stored and not stored & known:
        raise SecretError(
            f"master key {ring.current.key_id} opens none of the stored secrets "
            f"(sealed under {', '.join(sorted(stored))}): refusing to seal under it",
            hint="set FATCTL_MASTER_KEY to the fleet's key (or rotate with "
            "FATCTL_PREVIOUS_MASTER_KEYS set to the current one)",
        )


def get(session: Session, ring: KeyRing, *, agent_pk: int | None, name: str) -> Sensitive:
    row = _find(session, agent_pk, name)
    if row is None:
        raise NotFound(f"no secret {name!r} for {context_of(agent_pk, name).split('/')[0]}")
    return open_sealed(
        Sealed(row.key_id, row.wrapped_key, row.ciphertext), ring, context_of(agent_pk, name)
    )


def names(session: Session, *, agent_pk: int | None) -> list[Secret]:
    query = select(Secret).order_by(col(Secret.name))
    query = query.where(
        Secret.agent_pk == agent_pk if agent_pk is not None else col(Secret.agent_pk).is_(None)
    )
    return list(session.exec(query).all())


def delete_for_agent(session: Session, agent_pk: int) -> int:
    rows = session.exec(select(Secret).where(Secret.agent_pk == agent_pk)).all()
    for row in rows:
        session.delete(row)
    return len(rows)


def delete_named(session: Session, agent_pk: int, names: list[str]) -> int:
    """Forget the agent's secrets of these names (a removed channel's tokens)."""
    query = select(Secret).where(Secret.agent_pk == agent_pk, col(Secret.name).in_(names))
    rows = session.exec(query).all()
    for row in rows:
        session.delete(row)
    return len(rows)


def rotate_master(session: Session, ring: KeyRing) -> tuple[int, int]:
    """Re-wrap every data key under the current master key; returns (rewrapped, already current).

    Runs in the caller's transaction: either every row moves to the new key or none does.
    """
    moved = current = 0
    for row in session.exec(select(Secret)).all():
        if row.key_id == ring.current.key_id:
            current += 1
            continue
        ctx = context_of(row.agent_pk, row.name)
        fresh = rewrap(Sealed(row.key_id, row.wrapped_key, row.ciphertext), ring, ctx)
        row.key_id, row.wrapped_key = fresh.key_id, fresh.wrapped_key
        row.updated_at = utcnow()
        session.add(row)
        moved += 1
    return moved, current
