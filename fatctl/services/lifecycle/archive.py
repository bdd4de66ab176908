"""`fatctl archive` and `fatctl archive purge`: a churned customer's agent, kept for a while,
then gone for good.

archive: backup (the gateway stopped and left stopped) -> verify (the newest archive opens, on
the box, before the box goes) -> dns (the records deleted) -> infra (server, firewall and
primary IPs released) -> snapshots (a suspend's `pre-suspend` snapshots deleted: Hetzner bills
them per GB and month, and the backup is what an archive keeps; one already gone is noted, not
an error) -> state (any record still there deleted again: one put back after the
`dns` step, by a person or by an older reconcile, would point at addresses Hetzner may already
have handed to someone else; then `archived`, `purge_after = now + archive_retention_days`). The
agent's R2 prefix (its /data and its encrypted backups) and its sealed secrets stay.
A suspended agent has no box: its suspend's backup is what is kept (backup and verify are
noted as skipped).

purge (every archived agent past `purge_after`): data (the R2 prefix, with credentials issued
now: the stored ones expired long ago) -> secrets (every sealed secret of the agent, its backup
identity among them: the archives that might survive anywhere can no longer be opened, which
is crypto-shredding) -> state `destroyed`. Each agent's purge is its own lifecycle op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from fatctl.clock import Clock, wall_clock
from fatctl.domain import AgentState, snapshot_labels
from fatctl.errors import CloudError, ConfigError
from fatctl.infra.projects import engine_in_project
from fatctl.infra.selector import managed
from fatctl.services.backup.on_box import verify_backup
from fatctl.services.common.secret_names import R2_CREDENTIALS_SECRET
from fatctl.services.common.steps import Emit
from fatctl.services.common.targets import agent_target
from fatctl.services.lifecycle.ops import OpView, lifecycle_op, open_op, ops_of
from fatctl.services.lifecycle.suspend import (
    Context,
    LifecycleResult,
    Records,
    agent_in,
    backup_stopped,
    delete_server,
    require_backup_box,
    result,
)
from fatctl.services.storage.data import purge_prefix
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.secrets import KeyRing
    from fatctl.services.lifecycle.ops import Op

ARCHIVE_STEPS = ("backup", "verify", "dns", "infra", "snapshots", "state")
SUSPEND_SNAPSHOT_KIND = "pre-suspend"  # what `snapshot_before` labels a suspend's snapshot
PURGE_STEPS = ("data", "secrets", "state")
ARCHIVABLE = (AgentState.READY, AgentState.DEGRADED, AgentState.PROVISIONING,
              AgentState.SUSPENDED)  # fmt: skip
MAX_RETENTION_DAYS = 3650
SUSPENDED = AgentState.SUSPENDED.value


def retention(settings: Settings) -> timedelta:
    """`archive_retention_days` as a duration; a bad value is the operator's to fix (exit 2)."""
    raw = settings.archive_retention_days.strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RETENTION_DAYS:
        raise ConfigError(f"FATCTL_ARCHIVE_RETENTION_DAYS must be whole days from 1 to "
                          f"{MAX_RETENTION_DAYS} (got {raw[:20]!r})")  # fmt: skip
    return timedelta(days=int(raw))


def archive(ctx: Context, name: str, *, no_backup: bool = False) -> LifecycleResult:
    """Archive `name` (or finish its unfinished archive)."""
    keep = retention(ctx.settings)  # refused before anything is written
    ctx.settings.require("hcloud_token")
    if ctx.settings.domain:
        ctx.settings.require("cloudflare_api_token")
    from fatctl.state import repo

    in_state = agent_in(name, ARCHIVABLE, "archive")

    def check(session: Session, current: OpView | None) -> None:
        in_state(session, current)
        if current is None and repo.get_agent(session, name).state != SUSPENDED:
            require_backup_box(ctx, no_backup, "archive")  # a suspended agent has no box

    with lifecycle_op(ctx.db, name, "archive", ctx.actor, steps=ARCHIVE_STEPS,
                      params={"no_backup": no_backup}, emit=ctx.emit, check=check,
                      clock=ctx.clock) as op:  # fmt: skip
        boxless = _state(ctx, name) == SUSPENDED
        if boxless:
            op.skip("backup", f"suspended: no box; {_suspend_backup(ctx.db, name)}")
            op.skip("verify", "suspended: no box to open the backup on")
        elif op.params["no_backup"]:
            op.skip("backup", "skipped by --no-backup")
            op.skip("verify", "no backup taken to verify (--no-backup)")
        else:
            op.run("backup", lambda: backup_stopped(ctx, op, "pre-archive"))
            op.run("verify", lambda: _verify(ctx, op))
        op.run("dns", lambda: _delete_dns(ctx, name))
        op.run("infra", lambda: delete_server(ctx, name, release_ips=True))
        op.run("snapshots", lambda: _delete_suspend_snapshots(ctx, op))
        op.run("state", lambda: {**_delete_dns(ctx, name), **_mark_archived(ctx, op, keep)})
    return result(ctx, op, {"purge_after": op.params.get("purge_after", "")})


@dataclass(frozen=True)
class PurgeRun:
    """`archive purge`'s `Records`: it reaches R2 and the database, never a server (so it needs
    no Hetzner token)."""

    db: Engine
    ring: KeyRing
    settings: Settings
    actor: str
    emit: Emit = lambda kind, **fields: None
    clock: Clock = wall_clock


@dataclass(frozen=True)
class PurgeCandidate:
    agent: str
    purge_after: str
    resuming: bool  # an earlier purge of it did not finish


def purge_candidates(ctx: Records) -> list[PurgeCandidate]:
    """Archived agents past `purge_after` (read from `ctx.clock` once), and any whose purge an
    earlier run left unfinished."""
    from fatctl.state import repo

    now = ctx.clock()
    out = []
    with session_scope(ctx.db) as session:
        for agent in repo.list_agents(session, states=[AgentState.ARCHIVED.value]):
            pending = open_op(session, agent.id or 0)
            resuming = pending is not None and pending.kind == "purge"
            due = agent.purge_after is not None and _aware(agent.purge_after) <= now
            if due or resuming:
                after = _aware(agent.purge_after).isoformat() if agent.purge_after else ""
                out.append(PurgeCandidate(agent.name, after, resuming))
    return out


def purge(ctx: Records, names: list[str]) -> list[LifecycleResult]:
    """Purge each named archived agent (the caller chose them from `purge_candidates`)."""
    from fatctl.dns.r2_credentials import r2_settings

    if names:  # every setting the steps need, before the first op is opened
        ctx.settings.require("r2_endpoint")
        ctx.settings.require("cloudflare_api_token")
        r2_settings(ctx.settings)
    return [_purge_one(ctx, name) for name in names]


def _purge_one(ctx: Records, name: str) -> LifecycleResult:
    with lifecycle_op(ctx.db, name, "purge", ctx.actor, steps=PURGE_STEPS, emit=ctx.emit,
                      check=agent_in(name, (AgentState.ARCHIVED,), "purge"),
                      clock=ctx.clock) as op:  # fmt: skip
        op.run("data", lambda: _purge_data(ctx, op))
        op.run("secrets", lambda: _shred(ctx, name))
        op.run("state", lambda: _mark_destroyed(ctx, name))
    return result(ctx, op, {})


def _suspend_backup(db: Engine, name: str) -> str:
    """What the agent's last finished suspend left to keep: its backup, or none when it ran
    with --no-backup (saying "kept" then would promise a backup that does not exist)."""
    done = [o for o in ops_of(db, name) if o.kind == "suspend" and o.state == "done"]
    if done and done[-1].params.get("no_backup"):
        return "no backup exists (it was suspended with --no-backup)"
    backup = done[-1].params.get("backup") if done else None
    return f"its suspend's backup {backup} is kept" if backup else "its suspend's backup is kept"


def _state(ctx: Context, name: str) -> str:
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        return repo.get_agent(session, name).state


def _verify(ctx: Context, op: Op) -> dict[str, object]:
    """The backup just taken opens (decrypted, verified, restored into scratch on the box)."""
    from fatctl.remote.runner import Pool

    target = agent_target(ctx.db, ctx.settings, op.agent)
    with Pool() as pool:
        answer = verify_backup(ctx.db, ctx.ring, pool, target, name=op.params.get("backup"),
                               actor=ctx.actor)  # fmt: skip
    return {"verified": str(answer.get("name") or "")}


def _delete_dns(ctx: Context, name: str) -> dict[str, object]:
    """The agent's records at Cloudflare and their rows in state (idempotent)."""
    from sqlmodel import select

    from fatctl.dns.cloudflare_dns import CloudflareDns
    from fatctl.state import repo
    from fatctl.state.models import DnsRecord

    if not ctx.settings.domain:
        return {"deleted": "none (no domain)"}
    changes = CloudflareDns(ctx.settings).delete(name)
    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, name)
        for row in session.exec(select(DnsRecord).where(DnsRecord.agent_pk == agent.id)).all():
            session.delete(row)
    return {"deleted": ", ".join(f"{c.type} {c.name}" for c in changes) or "none"}


def _delete_suspend_snapshots(ctx: Context, op: Op) -> dict[str, object]:
    """Every snapshot Hetzner holds labelled as the agent's suspend's (found by label, so one
    from an earlier suspend, or a rerun after a crash, is found too), recorded in the op's
    params; a 404 on delete means someone deleted it meanwhile, which is the outcome wanted."""
    from fatctl.state import repo

    name = op.agent
    with session_scope(ctx.db) as session:
        project = repo.get_agent(session, name).project or ""
    # A router over several projects names no client of its own: the agent's project holds
    # its snapshots (as move asks it for its replacement).
    h = engine_in_project(ctx.infra, project).hcloud_client()
    selector = managed(**snapshot_labels(name, SUSPEND_SNAPSHOT_KIND))

    def get_all(**kw: Any) -> list[Any]:
        return list(h.client.images.get_all(type=["snapshot"], **kw))

    deleted, gone = [], []
    for image in h.listed(f"list {name}'s snapshots", get_all, selector):
        try:
            h.call(f"delete snapshot {image.id}", partial(h.client.images.delete, image))
            deleted.append(str(image.id))
        except CloudError as exc:
            if exc.code != "not_found":
                raise
            gone.append(str(image.id))
    out: dict[str, object] = {"snapshots_deleted": ",".join(deleted) or "none"}
    if gone:
        out["already_gone"] = ",".join(gone)
    op.remember(**out)
    return out


def _mark_archived(ctx: Context, op: Op, keep: timedelta) -> dict[str, object]:
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, op.agent)
        agent.server_id = agent.firewall_id = ""
        agent.primary_ipv4_id = agent.primary_ipv6_id = agent.ipv4 = agent.ipv6 = ""
        agent.last_step = ""
        agent.suspended_at = None
        agent.purge_after = ctx.clock() + keep
        repo.set_state(session, agent, AgentState.ARCHIVED)
        after = agent.purge_after.isoformat()
    op.remember(purge_after=after)
    return {"state": AgentState.ARCHIVED.value, "purge_after": after}


def _purge_data(ctx: Records, op: Op) -> dict[str, object]:
    """Every object under the agent's prefix, deleted with credentials issued now for it."""
    from fatctl.dns.r2_credentials import issue_r2_credentials
    from fatctl.services.storage.r2_rotation import r2_env, stored_expiry
    from fatctl.state import secret_store

    agent_pk, agent_id, _ = stored_expiry(ctx.db, op.agent)
    creds = issue_r2_credentials(ctx.settings, agent_id, clock=ctx.clock)
    with session_scope(ctx.db) as session:
        secret_store.put(session, ctx.ring, agent_pk=agent_pk, name=R2_CREDENTIALS_SECRET,
                         value=r2_env(creds), expires_at=creds.expires_at)  # fmt: skip
    return {"objects_deleted": purge_prefix(ctx.db, ctx.ring, ctx.settings, op.agent)}


def _shred(ctx: Records, name: str) -> dict[str, object]:
    """Every sealed secret of the agent (backup identity, host key, tokens, R2 credentials)
    and what fatctl knew of its backups, which no longer exist and could not be opened."""
    from fatctl.state import repo, secret_store

    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, name)
        secrets = secret_store.delete_for_agent(session, agent.id or 0)
        backups = repo.backups_of(session, agent)
        for row in backups:
            session.delete(row)
        agent.backup_recipient = ""
        session.add(agent)
    return {"secrets_deleted": secrets, "backup_rows_deleted": len(backups)}


def _mark_destroyed(ctx: Records, name: str) -> dict[str, object]:
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, name)
        repo.set_state(session, agent, AgentState.DESTROYING)
        repo.set_state(session, agent, AgentState.DESTROYED)
        agent.purge_after = None
        session.add(agent)
    return {"state": AgentState.DESTROYED.value}


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC
