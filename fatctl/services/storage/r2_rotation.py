"""`fatctl creds rotate`: refresh each box's R2 temporary credentials before they expire.

R2 per-prefix credentials live at most 7 days. For every selected agent whose stored
credentials expire within the window (or were never issued), this issues new ones scoped to
`agents/<id>/`, delivers them over SSH to the box's rclone env file (0600, content on stdin),
checks them with the box's credential script, and only then stores them encrypted with their
expiry: a run that dies half-way is simply redone by the next one. Nothing is restarted: the
running mount's SDK re-reads the file through that script within `R2_CREDENTIALS_TTL_S`
(`rclone-data.service`), so the gateway keeps its process and its chat sockets. The old keys
stay valid until they expire (at least `ROTATE_BEFORE` later), long after the mount switched.
Every box a run looks at leaves an audit entry, rotated, failed or left fresh (so a run that
changed nothing is on the trail too). One clock, read once per run, decides all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cloud_init.layout import R2_ENV
from fatctl.clock import Clock, fixed, wall_clock
from fatctl.dns.r2_credentials import (
    ROTATE_BEFORE,
    R2Credentials,
    issue_r2_credentials,
    needs_rotation,
)
from fatctl.errors import FatctlError
from fatctl.remote.commands.shell import maybe_sudo
from fatctl.remote.commands.storage import take_r2_credentials
from fatctl.sensitive import Sensitive
from fatctl.services.common.delivery import deliver_file
from fatctl.services.common.open_ops import OpInProgress, refuse_while_open
from fatctl.services.common.secret_names import R2_CREDENTIALS_SECRET
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.secrets import KeyRing


@dataclass(frozen=True)
class Rotation:
    agent: str
    action: str  # rotated, fresh, busy, failed
    expires_at: datetime | None
    detail: str = ""


# The audit result of each action: a fresh box was looked at and deliberately left alone.
# `busy`: an unfinished lifecycle op owns the box (its rerun delivers what the box needs).
AUDIT_RESULT = {"rotated": "ok", "fresh": "skipped", "busy": "skipped", "failed": "failed"}


def r2_env(creds: R2Credentials) -> Sensitive:
    """The env file rclone's unit reads (RCLONE_CONFIG_<remote>_<option>; the remote is `r2`)."""
    return Sensitive(
        f"RCLONE_CONFIG_R2_ACCESS_KEY_ID={creds.access_key_id}\n"
        f"RCLONE_CONFIG_R2_SECRET_ACCESS_KEY={creds.secret_access_key.reveal()}\n"
        f"RCLONE_CONFIG_R2_SESSION_TOKEN={creds.session_token.reveal()}\n"
    )


def stored_expiry(engine: Engine, agent: str) -> tuple[int, str, datetime | None]:
    """(agent pk, agent id, expiry of the stored credentials or None)."""
    from fatctl.state import repo, secret_store

    with session_scope(engine) as session:
        row = repo.get_agent(session, agent)
        assert row.id is not None
        found = [
            s
            for s in secret_store.names(session, agent_pk=row.id)
            if s.name == R2_CREDENTIALS_SECRET
        ]
        expiry = found[0].expires_at if found else None
        if expiry is not None and expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)  # SQLite hands back naive UTC
        return row.id, row.agent_id, expiry


def _record(
    engine: Engine,
    ring: KeyRing,
    agent_pk: int,
    rotation: Rotation,
    *,
    creds: R2Credentials | None,
    actor: str,
    at: datetime,
) -> None:
    """Store the new credentials (when there are any) and audit the outcome, in one transaction."""
    from fatctl.state import repo, secret_store

    with session_scope(engine) as session:
        if creds is not None:
            secret_store.put(
                session,
                ring,
                agent_pk=agent_pk,
                name=R2_CREDENTIALS_SECRET,
                value=r2_env(creds),
                expires_at=creds.expires_at,
            )
        detail: dict[str, object] = {"action": rotation.action, "expires_at": rotation.expires_at}
        if rotation.detail:
            detail["reason"] = rotation.detail
        repo.audit(session, actor=actor, action="creds.rotate", target=rotation.agent,
                   result=AUDIT_RESULT[rotation.action], detail=detail, at=at)  # fmt: skip


def is_due(expiry: datetime | None, now: datetime, window: timedelta, force: bool) -> bool:
    """Rotate now: asked to, never issued, or expiring within `window` of `now`."""
    return force or expiry is None or needs_rotation(expiry, now, window)


def planned_rotations(
    engine: Engine, targets: Sequence[Target], *, now: datetime, window: timedelta, force: bool
) -> list[Rotation]:
    """What `rotate_r2` would do to each box (`would rotate` or `fresh`), from the stored
    expiries alone: no credentials issued, no SSH, no audit entry."""
    planned = []
    for target in targets:
        _, _, expiry = stored_expiry(engine, target.name)
        stale = is_due(expiry, now, window, force)
        planned.append(Rotation(target.name, "would rotate" if stale else "fresh", expiry,
                                "never issued" if expiry is None else ""))  # fmt: skip
    return planned


def rotate_one(
    engine: Engine,
    ring: KeyRing,
    settings: Settings,
    pool: Pool,
    target: Target,
    *,
    now: datetime,
    window: timedelta = ROTATE_BEFORE,
    force: bool = False,
    actor: str = "fatctl",
    issue: Callable[..., R2Credentials] = issue_r2_credentials,
    env_path: str = R2_ENV,
    after: str | None = None,
) -> Rotation:
    """Rotate one box's credentials when they expire within `window` of `now` (or `force`).

    `now` is the single instant of the run: freshness, the new expiry and the audit entry are
    all measured from it, whatever the wall clock says.
    """

    agent_pk, agent_id, expiry = stored_expiry(engine, target.name)
    if not is_due(expiry, now, window, force):
        fresh = Rotation(target.name, "fresh", expiry)
        _record(engine, ring, agent_pk, fresh, creds=None, actor=actor, at=now)
        return fresh
    try:
        refuse_while_open(engine, target.name, "R2 credential rotation")
    except OpInProgress as exc:
        busy = Rotation(target.name, "busy", expiry, exc.one_line())
        _record(engine, ring, agent_pk, busy, creds=None, actor=actor, at=now)
        return busy
    creds: R2Credentials | None = None
    try:
        creds = issue(settings, agent_id, clock=fixed(now))
        deliver_file(pool, target, env_path, r2_env(creds))
        take = after if after is not None else take_r2_credentials()
        result = pool.get(target).run(maybe_sudo(take, needed=target.user != "root"))
        done = (
            Rotation(target.name, "rotated", creds.expires_at)
            if result.ok
            else Rotation(target.name, "failed", expiry, "the box did not take the credentials")
        )
    except FatctlError as exc:
        done = Rotation(target.name, "failed", expiry, exc.one_line())
    stored = creds if done.action == "rotated" else None
    _record(engine, ring, agent_pk, done, creds=stored, actor=actor, at=now)
    return done


def rotate_r2(
    engine: Engine,
    ring: KeyRing,
    settings: Settings,
    targets: Sequence[Target],
    pool: Pool,
    *,
    window: timedelta = ROTATE_BEFORE,
    force: bool = False,
    clock: Clock = wall_clock,
    actor: str = "fatctl",
    issue: Callable[..., R2Credentials] = issue_r2_credentials,
    env_path: str = R2_ENV,
    after: str | None = None,
) -> list[Rotation]:
    """Rotate each target in turn; one box failing does not stop the others.

    The clock is read once: every box of the run is judged, stamped and audited against the
    same instant (a run across many boxes must not drift into a different answer).
    """
    now = clock()
    return [
        rotate_one(
            engine,
            ring,
            settings,
            pool,
            t,
            now=now,
            window=window,
            force=force,
            actor=actor,
            issue=issue,
            env_path=env_path,
            after=after,
        )
        for t in targets
    ]
