"""`fatctl backup now|list|verify|restore`: the box's `fat-backup` driven over SSH.

The box writes, encrypts and uploads archives itself (templates/scripts/fat-backup.sh.j2);
fatctl asks for one, reads the box's one-JSON-object answer, and records what it learnt in the
`backups` table and the audit trail. Opening an archive (verify, restore) needs the agent's
backup identity: it is sealed in fatctl's secret store and reaches the box only for that
command, on stdin into a 0600 file on tmpfs that is removed afterwards whatever happened. A
restore replaces the gateway's state and ends with the health gate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cloud_init import layout as L
from fatctl.errors import FatctlError, RemoteError
from fatctl.remote.commands import backup as cmd
from fatctl.remote.commands.shell import maybe_sudo, run
from fatctl.sensitive import Sensitive, redact
from fatctl.services.backup.keys import no_key_error
from fatctl.services.common.audit import audit_change
from fatctl.services.common.delivery import deliver_file
from fatctl.services.common.health import wait_healthy
from fatctl.services.common.open_ops import refuse_while_open
from fatctl.services.common.secret_names import BACKUP_IDENTITY_SECRET
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.pacing.poll import Backoff
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.secrets import KeyRing


class BackupFailed(FatctlError):
    """The box could not take, open or restore a backup (its one-line reason attached)."""


@dataclass(frozen=True)
class BackupTaken:
    agent: str
    name: str
    object_key: str
    kind: str
    at: str
    size_bytes: int
    took_s: float
    gateway: str  # untouched, restarted or stopped

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _answer(pool: Pool, target: Target, command: str, what: str, timeout: float) -> dict:
    """Run one `fat-backup` command as root and return its JSON object; a failure (the
    script's own `error`, or no parseable answer) is one line naming the box."""
    result = pool.get(target).run(maybe_sudo(command, target.user != "root"), timeout=timeout)
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        tail = (result.stderr.strip().splitlines() or [result.error or "no answer"])[-1]
        raise BackupFailed(f"{what} on {target.name} failed: {redact(tail)[:300]}")
    if not answer.get("ok"):
        reason = str(answer.get("error") or f"exit {result.exit_code}")
        raise BackupFailed(f"{what} on {target.name} failed: {redact(reason)[:300]}")
    return answer


def take_backup(
    engine: Engine,
    pool: Pool,
    target: Target,
    *,
    kind: str = "manual",
    stop_gateway: bool = False,
    keep_stopped: bool = False,
    actor: str = "fatctl",
) -> BackupTaken:
    """One backup now, recorded (row + audit) once the box says its pair is uploaded. An agent
    without a backup key has no `fat-backup` on its box: refused in one line naming the command
    that makes and delivers one, before the box is asked."""
    require_backup_key(engine, target.name)
    command = cmd.run_backup(kind, stop_gateway=stop_gateway, keep_stopped=keep_stopped)
    try:
        answer = _answer(pool, target, command, "backup", timeout=3600)
    except FatctlError as exc:
        _audit(engine, actor, "backup.now", target.name, "failed", {"kind": kind,
               "error": exc.one_line()})  # fmt: skip
        raise
    taken = BackupTaken(
        agent=target.name,
        name=str(answer["name"]),
        object_key=str(answer["object"]),
        kind=kind,
        at=str(answer["at"]),
        size_bytes=int(answer.get("size_bytes") or 0),
        took_s=float(answer.get("took_s") or 0.0),
        gateway=str(answer.get("gateway") or "untouched"),
    )
    _remember(engine, target.name, [answer], sha256=str(answer.get("sha256") or ""),
              runtime=str(answer.get("runtime") or ""))  # fmt: skip
    shown = {"kind": kind, "object": taken.object_key, "size_bytes": taken.size_bytes,
             "gateway": taken.gateway}  # fmt: skip
    _audit(engine, actor, "backup.now", target.name, "ok", shown)
    return taken


def list_backups(engine: Engine, pool: Pool, target: Target) -> list[dict[str, object]]:
    """The complete backups in the agent's R2 prefix, newest first (R2 is the truth), with
    when fatctl last proved each one opens."""
    answer = _answer(pool, target, cmd.list_backups(), "listing backups", timeout=300)
    found = [b for b in answer.get("backups") or [] if isinstance(b, dict)]
    _remember(engine, target.name, found)
    verified = _verified(engine, target.name)
    return [{**b, "verified_at": verified.get(str(b.get("object")))} for b in found]


def verify_backup(
    engine: Engine,
    ring: KeyRing,
    pool: Pool,
    target: Target,
    *,
    name: str | None = None,
    actor: str = "fatctl",
) -> dict[str, object]:
    """Open an archive (the newest by default) in scratch space on the box: decrypt, let
    OpenClaw verify it, restore it into scratch and preflight its database. The live state
    and the gateway are not touched."""
    with _identity_on_box(engine, ring, pool, target):
        try:
            answer = _answer(pool, target, cmd.verify_backup(name), "verify", timeout=3600)
        except FatctlError as exc:
            _audit(engine, actor, "backup.verify", target.name, "failed",
                   {"name": name or "newest", "error": exc.one_line()})  # fmt: skip
            raise
    opened = str(answer.get("name") or name or "")
    _mark_verified(engine, target.name, opened)
    _audit(engine, actor, "backup.verify", target.name, "ok", {"name": opened})
    return answer


def restore_backup(
    engine: Engine,
    ring: KeyRing,
    pool: Pool,
    target: Target,
    backoff: Backoff,
    *,
    name: str,
    start: bool = True,
    actor: str = "fatctl",
    outside_op: bool = False,
) -> dict[str, object]:
    """Put archive `name` back as the gateway's state: the box stops the gateway, moves the
    current state aside, activates the archive's state, runs OpenClaw's `doctor
    --non-interactive`, and starts the gateway (unless `start` is false); then the health gate.

    `outside_op` (`fatctl backup restore`, under the agent's lease): refused (exit 2) while a
    lifecycle op of the agent is unfinished, as it would race a half-done rebuild's own restore
    or restart a gateway a failed suspend stopped. The ops' own restores run inside their op."""
    if outside_op:
        refuse_while_open(engine, target.name, "backup restore")
    with _identity_on_box(engine, ring, pool, target):
        try:
            answer = _answer(pool, target, cmd.restore_backup(name, start=start), "restore",
                             timeout=3600)  # fmt: skip
        except FatctlError as exc:
            _audit(engine, actor, "backup.restore", target.name, "failed",
                   {"name": name, "error": exc.one_line()})  # fmt: skip
            raise
    if start:
        wait_healthy(pool, target, backoff, BackupFailed)
    _audit(engine, actor, "backup.restore", target.name, "ok",
           {"name": name, "displaced": answer.get("displaced"), "started": start})  # fmt: skip
    return answer


@contextmanager
def _identity_on_box(engine: Engine, ring: KeyRing, pool: Pool, target: Target) -> Iterator[None]:
    """The agent's backup identity delivered to the box for one command, removed after it
    (the script removes it too; this covers a script killed or never started)."""
    identity = backup_identity(engine, ring, target.name)
    sudo = target.user != "root"
    make_dir = run(["install", "-d", "-m", "0700", "-o", "root", "-g", "root",
                    L.BACKUP_IDENTITY.rsplit("/", 1)[0]])  # fmt: skip
    pool.get(target).run(maybe_sudo(make_dir, sudo)).check("preparing the box")
    try:
        deliver_file(pool, target, L.BACKUP_IDENTITY, identity)
        yield
    finally:
        gone = pool.get(target).run(maybe_sudo(cmd.drop_identity(), sudo))
        if not gone.ok:
            raise RemoteError(f"could not remove the backup identity from {target.name}")


def backup_identity(engine: Engine, ring: KeyRing, agent: str) -> Sensitive:
    """The agent's sealed age identity; refused clearly when it has none (made at provision,
    or by `fatctl backup keys` for an agent older than backup keys)."""
    from fatctl.state import repo, secret_store

    with session_scope(engine) as session:
        row = repo.get_agent(session, agent)
        known = {s.name for s in secret_store.names(session, agent_pk=row.id)}
        if BACKUP_IDENTITY_SECRET not in known:
            raise no_key_error(agent)
        return secret_store.get(session, ring, agent_pk=row.id, name=BACKUP_IDENTITY_SECRET)


def require_backup_key(engine: Engine, agent: str) -> None:
    """Refuse an agent whose box cannot back up: no recipient means no `fat-backup` rendered."""
    from fatctl.state import repo

    with session_scope(engine) as session:
        if not repo.get_agent(session, agent).backup_recipient:
            raise no_key_error(agent)


def _remember(
    engine: Engine, agent: str, found: list[dict], *, sha256: str = "", runtime: str = ""
) -> None:
    from fatctl.state import repo
    from fatctl.state.models import Backup

    with session_scope(engine) as session:
        row = repo.get_agent(session, agent)
        assert row.id is not None
        for b in found:
            if not b.get("object"):
                continue
            repo.record_backup(session, row, Backup(
                agent_pk=row.id, object_key=str(b["object"]), kind=str(b.get("kind") or ""),
                created_at=_parse_at(b.get("at")), size_bytes=int(b.get("size_bytes") or 0),
                sha256=sha256, runtime_version=runtime,
            ))  # fmt: skip


def _verified(engine: Engine, agent: str) -> dict[str, datetime | None]:
    from fatctl.state import repo

    with session_scope(engine) as session:
        row = repo.get_agent(session, agent)
        return {b.object_key: b.verified_at for b in repo.backups_of(session, row)}


def _mark_verified(engine: Engine, agent: str, name: str) -> None:
    from fatctl.state import repo

    with session_scope(engine) as session:
        row = repo.get_agent(session, agent)
        for b in repo.backups_of(session, row):
            if b.object_key.rsplit("/", 1)[-1].startswith(name + "."):
                b.verified_at = datetime.now(UTC)
                session.add(b)


def _parse_at(raw: object) -> datetime:
    try:
        at = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _audit(
    engine: Engine, actor: str, action: str, agent: str, result: str, detail: dict[str, object]
) -> None:
    audit_change(engine, actor, action, agent, result, detail)
