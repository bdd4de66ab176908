"""Record a serving change and bring the running box to it, in one command.

The box gets what provisioning would give it now: the non-secret files re-rendered from the
agent's spec (the converge set: `openclaw.json` is the one these changes touch) and a freshly
composed `gateway.env`. Only what differs is written (files through converge's atomic writes,
the environment file through secret delivery), the services a changed file affects are
restarted once (the gateway also when its environment changed: it reads it only at start), and
the box must then pass its own health gate, which includes OpenClaw's `/readyz`.

A dry run makes the database change inside a transaction it rolls back, reads the box and
returns the diffs (redacted: `converge.diff`) and whether the environment would change; it
writes nothing anywhere. An agent without a box yet only records the change: provisioning
renders and delivers it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cloud_init import layout as L
from cloud_init.render import render_files
from cloud_init.specjson import redact_host_keys
from fatctl.domain import AgentSpec, AgentState
from fatctl.errors import FatctlError, RemoteError
from fatctl.pacing.poll import Backoff
from fatctl.remote.commands import converge as cmd
from fatctl.remote.commands.shell import maybe_sudo
from fatctl.sensitive import Sensitive
from fatctl.services.agents.gateway_env import gateway_env
from fatctl.services.common.delivery import deliver_file
from fatctl.services.common.health import wait_healthy
from fatctl.services.common.leases import PROVISION_TTL_S, agent_lease
from fatctl.services.common.open_ops import refuse_if_open
from fatctl.services.common.specs import build_spec, sandbox_spec
from fatctl.services.common.steps import step_index
from fatctl.services.common.targets import target_for
from fatctl.services.converge import diff
from fatctl.services.serving.changes import Change
from fatctl.state import repo
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from cloud_init.files import RenderedFile
    from fatctl.config import Settings
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.secrets import KeyRing
    from fatctl.state.models import Agent

ChangeFn = Callable[["Session", "Agent"], Change]
LIVE_STATES = frozenset({AgentState.READY.value, AgentState.DEGRADED.value})


def has_box(agent: Agent) -> bool:
    """The agent's box holds a delivered configuration: ready or degraded, or a provisioning
    run got past its secrets step (a rerun keeps that step, so the box must be reached now)."""
    if agent.state in LIVE_STATES:
        return True
    provisioning = agent.state == AgentState.PROVISIONING.value
    return provisioning and step_index(agent.last_step) >= step_index("secrets")


class ApplyFailed(FatctlError):
    exit_code = 1


@dataclass(frozen=True)
class Wanted:
    """What the box should hold, computed in the change's own transaction."""

    files: dict[str, RenderedFile]
    env: Sensitive
    target: Target | None  # None: no box yet
    spec: AgentSpec | None = None  # what they were rendered from


NO_BOX = Wanted({}, Sensitive(""), None)  # provisioning renders and delivers everything


@dataclass(frozen=True)
class PushResult:
    agent: str
    action: str
    applied: str  # box, recorded (no box yet), unchanged, dry-run
    changed: tuple[str, ...] = ()
    env_changed: bool = False
    diff: str = ""
    readiness: str = ""

    def row(self) -> dict[str, object]:
        return {"agent": self.agent, "action": self.action, "applied": self.applied,
                "changed": list(self.changed), "env_changed": self.env_changed,
                "readiness": self.readiness, "diff": self.diff}  # fmt: skip


def push(
    db: Engine,
    ring: KeyRing,
    settings: Settings,
    name: str,
    actor: str,
    change: ChangeFn | None,
    *,
    dry_run: bool = False,
    layout: cmd.ConvergeLayout | None = None,
    backoff: Backoff | None = None,
) -> PushResult:
    """Apply `change` (None: only bring the box to what is recorded) to `name` and its box."""
    layout = layout or cmd.ConvergeLayout()
    if dry_run:
        action, wanted = _record(db, ring, settings, name, actor, change, keep=False)
        return _preview(name, action, wanted, layout)
    with lease(db, agent_lease(name), ttl_s=PROVISION_TTL_S):
        action, wanted = _record(db, ring, settings, name, actor, change, keep=True)
        if wanted.target is None:
            return PushResult(name, action, "recorded")
        try:
            result = _apply(name, action, wanted, layout, backoff or Backoff(timeout=300))
        except FatctlError as exc:
            _audit(db, actor, name, "failed", {"error": exc.one_line()[:300]})
            raise
    _audit(db, actor, name, "ok", {"changed": list(result.changed), "env": result.env_changed})
    return result


def _record(
    db: Engine, ring: KeyRing, settings: Settings, name: str, actor: str,
    change: ChangeFn | None, *, keep: bool,
) -> tuple[str, Wanted]:  # fmt: skip
    """Make the change and compute the box's wanted state; roll it back unless `keep`."""
    with session_scope(db) as session:
        refuse_if_open(session, name, "push")  # the op's next steps assume the box it left
        agent = repo.get_agent(session, name)
        done = change(session, agent) if change is not None else Change("agent.apply", {})
        session.flush()
        wanted = NO_BOX
        if has_box(agent):
            target = target_for(session, agent, settings)
            wanted = wanted_state(session, ring, settings, agent, sandbox=settings.in_sandbox,
                                  target=target)  # fmt: skip
        if keep and change is not None:
            repo.audit(session, actor=actor, action=done.action, target=name, detail=done.detail)
        if not keep:
            session.rollback()
    return done.action, wanted


def wanted_state(
    session: Session, ring: KeyRing, settings: Settings, agent: Agent, *, sandbox: bool,
    target: Target,
) -> Wanted:  # fmt: skip
    """What the box should hold now: its files as provisioning renders them, its environment
    (provisioning's secrets step and every serving change bring the box to this)."""
    spec = sandbox_spec(redact_host_keys(build_spec(session, agent, settings)), sandbox)
    files = diff.desired_files(render_files(spec))
    return Wanted(files, gateway_env(session, ring, agent.id or 0, spec), target, spec)


def _env_digest(env: Sensitive) -> str:
    return hashlib.sha256(env.reveal().encode()).hexdigest()


def _box_env_digest(pool: Pool, target: Target) -> str:
    """The sha256 of the box's gateway.env (its content never leaves the box)."""
    command = maybe_sudo(f"sha256sum {L.GATEWAY_ENV} 2>/dev/null || true",
                         needed=target.user != "root")  # fmt: skip
    result = pool.get(target).run(command, timeout=60)
    return result.stdout.split()[0] if result.stdout.strip() else ""


def _read(
    pool: Pool, target: Target, wanted: Wanted, layout: cmd.ConvergeLayout
) -> list[diff.Change]:
    paths = list(wanted.files)
    result = pool.get(target).run(cmd.read_files(layout, paths), timeout=120)
    if not result.ok:
        raise RemoteError(f"reading the box's files failed on {target.name}")
    return diff.changes(wanted.files, diff.parse_read(paths, result.stdout), layout.owners)


def _preview(name: str, action: str, wanted: Wanted, layout: cmd.ConvergeLayout) -> PushResult:
    if wanted.target is None:
        return PushResult(name, action, "dry-run")
    from fatctl.remote.runner import Pool

    with Pool() as pool:
        changes = _read(pool, wanted.target, wanted, layout)
        env_changed = _box_env_digest(pool, wanted.target) != _env_digest(wanted.env)
    text = "".join(c.diff for c in changes)
    if env_changed:
        text += f"--- {L.GATEWAY_ENV}\n+++ {L.GATEWAY_ENV}\n# changes (values never shown)\n"
    return PushResult(name, action, "dry-run", tuple(c.path for c in changes), env_changed, text)


def _apply(
    name: str, action: str, wanted: Wanted, layout: cmd.ConvergeLayout, backoff: Backoff
) -> PushResult:
    from fatctl.remote.runner import Pool

    assert wanted.target is not None
    with Pool() as pool:
        changed, env_changed = sync_box(pool, wanted.target, wanted, layout)
        if not changed and not env_changed:
            return PushResult(name, action, "unchanged")
        readiness = _gate(pool, wanted.target, backoff)
    return PushResult(name, action, "box", changed, env_changed, readiness=readiness)


def sync_box(
    pool: Pool, target: Target, wanted: Wanted, layout: cmd.ConvergeLayout, *,
    hold_env: bool = False,
) -> tuple[tuple[str, ...], bool]:  # fmt: skip
    """Write what differs (files, then the environment file) and restart what they affect,
    the gateway once; returns the changed paths and whether the environment changed.
    `hold_env`: the files only (provisioning before a restore: without its environment the
    gateway does not start, so it never runs on the empty state)."""
    changes = _read(pool, target, wanted, layout)
    env_changed = not hold_env and _box_env_digest(pool, target) != _env_digest(wanted.env)
    if not changes and not env_changed:
        return (), False
    for c in changes:
        f = wanted.files[c.path]
        write = cmd.write_file(layout, f.path, f.mode, f.owner)
        result = pool.get(target).run(write, stdin=f.content.encode(), timeout=60)
        result.check(f"writing {f.path}")
    if env_changed:
        deliver_file(pool, target, L.GATEWAY_ENV, wanted.env)
    actions = cmd.actions_for([c.path for c in changes])
    if env_changed and L.GATEWAY_UNIT not in actions.restart:
        actions = replace(actions, restart=(*actions.restart, L.GATEWAY_UNIT))
    pool.get(target).run(cmd.apply_actions(layout, actions), timeout=400).check("restarting")
    return tuple(c.path for c in changes), env_changed


def _gate(pool: Pool, target: Target, backoff: Backoff) -> str:
    """Wait for `fat-health` to report the box healthy and the gateway ready."""
    wait_healthy(pool, target, backoff, ApplyFailed)
    return "ready"


def _audit(db: Engine, actor: str, name: str, result: str, detail: dict[str, object]) -> None:
    with session_scope(db) as session:
        repo.audit(session, actor=actor, action="agent.apply", target=name, result=result,
                   detail=detail)  # fmt: skip
