"""Fleet SSH keys' Hetzner ids, kept in `ssh_keys.hcloud_id` between processes.

An engine that can create a box from known key ids (the hcloud engine) is seeded with the ids
recorded for its project before an apply and reports the ids it ensured after it, so only the
first provision after a key is added uploads (or adopts) it; every later one, in any process,
creates the server without listing the project's keys. Engines without ids are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from fatctl.domain import KeyRole
from fatctl.infra.desired import key_fingerprint
from fatctl.infra.engine import InfraEngine, key_id_caching
from fatctl.pacing.timing import Timing
from fatctl.state.db import session_scope
from fatctl.state.models import SshKey

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.domain import AgentSpec


def _active(session: Any) -> list[SshKey]:
    return list(session.exec(select(SshKey).where(col(SshKey.revoked_at).is_(None))).all())


def seed(db: Engine, engine: InfraEngine) -> None:
    """Hand the engine the ids recorded in its project (by Hetzner fingerprint)."""
    infra = key_id_caching(engine)
    project = infra.project_tag if infra is not None else ""
    if infra is None or not project:
        return
    with session_scope(db) as session:
        ids = {
            key_fingerprint(k.public_key): k.hcloud_id
            for k in _active(session)
            if k.hcloud_id and k.hcloud_project == project
        }
    if ids:
        infra.seed_key_ids(ids)


def record(db: Engine, engine: InfraEngine, spec: AgentSpec) -> None:
    """Remember the ids the engine ensured for the spec's keys (writes only what changed)."""
    infra = key_id_caching(engine)
    project = infra.project_tag if infra is not None else ""
    if infra is None or not project:
        return
    ids: Mapping[str, str] = infra.key_ids(spec)
    if not ids:
        return
    with session_scope(db) as session:
        for key in _active(session):
            found = ids.get(key_fingerprint(key.public_key))
            if found and (key.hcloud_id, key.hcloud_project) != (found, project):
                key.hcloud_id, key.hcloud_project = found, project
                session.add(key)


def upload_added(settings: Settings, db: Engine, fingerprint: str) -> str | None:
    """Upload a key the moment it is added, when a Hetzner token is configured, and record its
    id: the provisions after it then create boxes without any key call. Returns the Hetzner id,
    or None when no token is set (the next provision uploads it instead)."""
    if settings.hcloud_token is None:
        return None
    from fatctl.infra.hcloud.client import project_tag
    from fatctl.infra.hcloud.keys import upload_key

    # Opportunistic: a short retry budget, since the next provision uploads it anyway.
    usual = Timing.of(settings)
    timing = replace(usual, retry_attempts=2, retry_cap=2.0)
    active = select(SshKey).where(
        SshKey.fingerprint == fingerprint, col(SshKey.revoked_at).is_(None)
    )
    with session_scope(db) as session:
        key = session.exec(active).first()
        if key is None:
            return None
        public_key, role = key.public_key, KeyRole(key.role)
    hcloud_id = upload_key(settings, public_key, role, timing=timing)
    with session_scope(db) as session:
        for row in session.exec(active).all():
            row.hcloud_id, row.hcloud_project = hcloud_id, project_tag(settings)
            session.add(row)
    return hcloud_id
