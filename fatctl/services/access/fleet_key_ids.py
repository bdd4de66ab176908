"""Fleet SSH keys' Hetzner ids, kept in `hcloud_key_ids` (one per key and project) between
processes.

An engine that can create a box from known key ids (the hcloud engine) is seeded with the ids
recorded for its project before an apply and reports the ids it ensured after it, so only the
first provision after a key is added uploads (or adopts) it in a project; every later one, in
any process, creates the server without listing that project's keys. A key lives once in each
project under its own id there, so switching projects never loses another project's ids.
`fatctl keys add` uploads to every project of the fleet at once, so no provision pays for it.
Engines without ids are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from fatctl.domain import KeyRole
from fatctl.errors import FatctlError
from fatctl.infra.desired import key_fingerprint
from fatctl.infra.engine import InfraEngine, key_id_caching
from fatctl.pacing.timing import Timing
from fatctl.state.db import session_scope
from fatctl.state.models import HcloudKeyId, SshKey

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.domain import AgentSpec


def _active_fingerprints(session: Any) -> set[str]:
    """Hetzner fingerprints of the keys not revoked."""
    keys = session.exec(select(SshKey.public_key).where(col(SshKey.revoked_at).is_(None))).all()
    return {key_fingerprint(public_key) for public_key in keys}


def _recorded(session: Any, project: str) -> dict[str, HcloudKeyId]:
    rows = session.exec(select(HcloudKeyId).where(HcloudKeyId.project == project)).all()
    return {row.fingerprint: row for row in rows}


def _keep(session: Any, project: str, ids: Mapping[str, str]) -> None:
    """Record fingerprint -> id in one project (writes only what changed)."""
    known = _recorded(session, project)
    for fingerprint, hcloud_id in ids.items():
        row = known.get(fingerprint) or HcloudKeyId(fingerprint=fingerprint, project=project,
                                                    hcloud_id=hcloud_id)  # fmt: skip
        if row.id is None or row.hcloud_id != hcloud_id:
            row.hcloud_id = hcloud_id
            session.add(row)


def seed(db: Engine, engine: InfraEngine) -> None:
    """Hand the engine the ids recorded in its project (by Hetzner fingerprint)."""
    infra = key_id_caching(engine)
    project = infra.project_tag if infra is not None else ""
    if infra is None or not project:
        return
    with session_scope(db) as session:
        active = _active_fingerprints(session)
        ids = {fp: row.hcloud_id for fp, row in _recorded(session, project).items() if fp in active}
    if ids:
        infra.seed_key_ids(ids)


def record(db: Engine, engine: InfraEngine, spec: AgentSpec) -> None:
    """Remember the ids the engine ensured for the spec's keys in its project."""
    infra = key_id_caching(engine)
    project = infra.project_tag if infra is not None else ""
    if infra is None or not project:
        return
    ids: Mapping[str, str] = infra.key_ids(spec)
    if not ids:
        return
    for attempt in (1, 2):
        try:
            with session_scope(db) as session:
                active = _active_fingerprints(session)
                _keep(session, project, {fp: i for fp, i in ids.items() if fp in active})
            return
        except IntegrityError:
            # Provisions running at once in one project (`fatctl serve` runs them in parallel)
            # both insert the first row of a key: the second reads the first's row and writes.
            if attempt == 2:
                raise


def upload_added(settings: Settings, db: Engine, fingerprint: str) -> str | None:
    """Upload a key the moment it is added to every Hetzner project of the fleet that has a
    token, and record its id in each: the provisions after it then create boxes without any key
    call, the first in each project too. Returns its id in the first project, or None when no
    token is set (the next provision uploads it instead). A project that fails is left to its
    next provision; the first failure is raised once the others are done."""
    from fatctl.infra.hcloud.client import project_tag
    from fatctl.infra.hcloud.keys import upload_key

    # Opportunistic: a short retry budget, since the next provision uploads it anyway.
    timing = replace(Timing.of(settings), retry_attempts=2, retry_cap=2.0)
    active = select(SshKey).where(
        SshKey.fingerprint == fingerprint, col(SshKey.revoked_at).is_(None)
    )
    with session_scope(db) as session:
        key = session.exec(active).first()
        if key is None:
            return None
        public_key, role = key.public_key, KeyRole(key.role)
    ids: list[str] = []
    failed: FatctlError | None = None
    for project in _projects_with_tokens(settings):
        try:
            hcloud_id = upload_key(project, public_key, role, timing=timing)
        except FatctlError as exc:
            failed = failed or exc
            continue
        with session_scope(db) as session:
            _keep(session, project_tag(project), {key_fingerprint(public_key): hcloud_id})
        ids.append(hcloud_id)
    if failed is not None:
        raise failed
    return ids[0] if ids else None


def _projects_with_tokens(settings: Settings) -> list[Settings]:
    """The settings for each project of the fleet (the top level alone without projects)."""
    if not settings.several_projects:
        return [settings] if settings.hcloud_token is not None else []
    return [settings.for_project(p.name) for p in settings.hcloud_projects if p.token]
