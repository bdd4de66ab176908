"""`fatctl suspend` and `fatctl resume`: a customer's box stops billing and comes back.

suspend: backup (the gateway stopped first and left stopped, so nothing the customer does after
the backup is lost; `--no-backup` skips it, audited) -> snapshot (only with `--snapshot`) ->
infra (the server and its firewall deleted, the primary IPs kept: Hetzner bills a server until
it is deleted, and the kept IPs let the DNS records stay as they are) -> state `suspended`,
`suspended_at`. The agent keeps its name, IPs, records, secrets and R2 prefix.

resume: the provision flow continued from `render` with `restore_from` (see
`provision.flow.continue_provision`): the DNS step finds the kept addresses, the infra step
creates a new server of the same name on them, and the backup the suspend took (else the newest
one not taken by the box's timer; `resume_restore_point`, kept in the op) is put back before the
gateway's first start. Then `suspended_at` is cleared.

Both are lifecycle ops (`lifecycle.ops`): a rerun after a failure or a kill continues after the
last finished step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fatctl.clock import Clock, wall_clock
from fatctl.domain import AgentState, snapshot_labels
from fatctl.errors import BadInput, StateError
from fatctl.pacing.poll import Backoff
from fatctl.services.backup.on_box import take_backup
from fatctl.services.common.steps import BOX_STEPS, LATEST_BACKUP, Emit
from fatctl.services.common.targets import agent_target
from fatctl.services.lifecycle.ops import OpView, lifecycle_op, ops_of
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.infra.engine import InfraEngine
    from fatctl.secrets import KeyRing
    from fatctl.services.lifecycle.ops import Op

SUSPEND_STEPS = ("backup", "snapshot", "infra", "state")
RESUME_STEPS = ("provision", "state")
# States a box can be suspended from: it exists (or may, half-provisioned) and is not mid-change.
SUSPENDABLE = (AgentState.READY, AgentState.DEGRADED, AgentState.PROVISIONING)


@dataclass(frozen=True)
class LifecycleResult:
    """What a lifecycle command did: the agent's state after it and each step's record."""

    agent: str
    kind: str
    state: str
    op_id: int
    steps: tuple[dict[str, object], ...]
    detail: dict[str, object]
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"agent": self.agent, "op": self.kind, "op_id": self.op_id, "state": self.state,
                "elapsed_s": self.elapsed_s, **self.detail, "steps": list(self.steps)}  # fmt: skip


class Records(Protocol):
    """What an op needs that touches no server (`archive purge`): a `Context` is one."""

    @property
    def db(self) -> Engine: ...
    @property
    def ring(self) -> KeyRing: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def actor(self) -> str: ...
    @property
    def emit(self) -> Emit: ...
    @property
    def clock(self) -> Clock: ...


@dataclass(frozen=True)
class Context:
    """What every lifecycle command works with."""

    db: Engine
    ring: KeyRing
    settings: Settings
    infra: InfraEngine
    actor: str
    emit: Emit = lambda kind, **fields: None
    backoff: Backoff = field(default_factory=Backoff)
    clock: Clock = wall_clock
    skip_box: bool = False  # the API-only sandbox: no box to reach (backups then need --no-backup)


def suspend(
    ctx: Context, name: str, *, snapshot: bool = False, no_backup: bool = False
) -> LifecycleResult:
    """Suspend `name` (or finish its unfinished suspend)."""
    require_backup_box(ctx, no_backup, "suspend")
    ctx.settings.require("hcloud_token")  # refused before anything is written
    params = {"snapshot": snapshot, "no_backup": no_backup}
    check = agent_in(name, SUSPENDABLE, "suspend")
    with lifecycle_op(ctx.db, name, "suspend", ctx.actor, steps=SUSPEND_STEPS, params=params,
                      emit=ctx.emit, check=check, clock=ctx.clock) as op:  # fmt: skip
        if op.params["no_backup"]:
            op.skip("backup", "skipped by --no-backup")
        else:
            op.run("backup", lambda: backup_stopped(ctx, op, "pre-suspend"))
        if op.params["snapshot"]:
            op.run("snapshot", lambda: snapshot_before(ctx, op))
        else:
            op.skip("snapshot", "no snapshot asked (--snapshot takes one)")
        op.run("infra", lambda: delete_server(ctx, name, release_ips=False))
        op.run("state", lambda: _mark_suspended(ctx, name))
    return result(ctx, op, {"snapshot_id": op.params.get("snapshot_id", ""),
                            "backup": op.params.get("backup", "")})  # fmt: skip


def resume(ctx: Context, name: str, *, no_restore: bool = False) -> LifecycleResult:
    """Bring a suspended `name` back on a new server with its kept IPs (or finish a resume)."""
    from fatctl.services.provision.preflight import provision_settings

    provision_settings(ctx.settings, box=not ctx.skip_box)  # refused before anything is written
    params = {"no_restore": no_restore or ctx.skip_box}
    check = agent_in(name, (AgentState.SUSPENDED,), "resume")
    with lifecycle_op(ctx.db, name, "resume", ctx.actor, steps=RESUME_STEPS, params=params,
                      emit=ctx.emit, check=check, clock=ctx.clock) as op:  # fmt: skip
        op.run("provision", lambda: _provision(ctx, op))
        op.run("state", lambda: _mark_resumed(ctx, name))
    return result(ctx, op, {})


def require_backup_box(ctx: Context, no_backup: bool, what: str) -> None:
    """A backup is taken on the box itself: without one to reach, only --no-backup goes on."""
    if ctx.skip_box and not no_backup:
        raise BadInput(f"{what} without a box (--no-box) cannot take the backup: "
                       "pass --no-backup")  # fmt: skip


def agent_in(
    name: str, states: tuple[AgentState, ...], what: str
) -> Callable[[Session, OpView | None], None]:
    """An op's `check`: a new op needs the agent in one of `states` (an open op of the same
    kind is continued whatever the state it left)."""

    def check(session: Session, current: OpView | None) -> None:
        from fatctl.state import repo

        agent = repo.get_agent(session, name)
        if current is None and agent.state not in {s.value for s in states}:
            allowed = " or ".join(s.value for s in states)
            raise BadInput(f"agent {name} is {agent.state}: {what} needs it {allowed}")

    return check


def backup_stopped(ctx: Context, op: Op, kind: str) -> dict[str, object]:
    """A backup with the gateway stopped first and left stopped (a box about to go away)."""
    from fatctl.remote.runner import Pool

    target = agent_target(ctx.db, ctx.settings, op.agent)
    with Pool() as pool:
        taken = take_backup(ctx.db, pool, target, kind=kind, stop_gateway=True,
                            keep_stopped=True, actor=ctx.actor)  # fmt: skip
    op.remember(backup=taken.name)
    return {"backup": taken.name, "size_bytes": taken.size_bytes, "gateway": taken.gateway}


def snapshot_before(ctx: Context, op: Op) -> dict[str, object]:
    """A server snapshot named and labelled for the op that takes it (`pre-<kind>`)."""
    image = ctx.infra.snapshot(op.agent, f"fatctl: {op.agent} before {op.kind}",
                               snapshot_labels(op.agent, f"pre-{op.kind}"))  # fmt: skip
    op.remember(snapshot_id=image)
    return {"snapshot_id": image}


def delete_server(ctx: Context, name: str, *, release_ips: bool) -> dict[str, object]:
    """The server and its firewall deleted (idempotent); the primary IPs kept unless released."""
    from fatctl.services.common.specs import build_spec
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        spec = build_spec(session, repo.get_agent(session, name), ctx.settings)
    ctx.infra.destroy(spec, release_ips=release_ips)
    return {"server": "deleted", "primary_ips": "released" if release_ips else "kept"}


def _mark_suspended(ctx: Context, name: str) -> dict[str, object]:
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, name)
        agent.server_id = agent.firewall_id = ""
        # Resume continues the provision flow from its start: material and render again, the
        # DNS step finds the kept addresses, the infra step makes a new server on them.
        agent.last_step = ""
        agent.suspended_at = ctx.clock()
        repo.set_state(session, agent, AgentState.SUSPENDED)
    return {"state": AgentState.SUSPENDED.value}


def _provision(ctx: Context, op: Op) -> dict[str, object]:
    from fatctl.services.provision.flow import Options, continue_provision

    restore = None if op.params.get("no_restore") else resume_restore_point(ctx.db, op)
    opts = Options(skip=BOX_STEPS if ctx.skip_box else frozenset(), backoff=ctx.backoff,
                   validate=not ctx.skip_box, sandbox=ctx.settings.in_sandbox, emit=ctx.emit,
                   clock=ctx.clock, restore_from=restore,
                   chose_restore=lambda name: op.remember(restore_from=name))  # fmt: skip
    done = continue_provision(ctx.db, ctx.ring, ctx.settings, ctx.infra, op.agent, ctx.actor, opts)
    restored = str(op.params.get("restore_from") or "") if restore else "nothing (--no-restore)"
    return {"server_id": done.server_id, "ipv4": done.ipv4, "ipv6": done.ipv6,
            "restored": restored, "provision_state": done.state}  # fmt: skip


def resume_restore_point(db: Engine, op: Op) -> str:
    """The backup a resume puts back, decided once and kept in its op: the one the suspend
    took, else "latest" (which the box resolves to its newest non-`scheduled` backup, and the
    op then keeps by name). Never the newest at the time of a rerun: a timer's backup of the
    new, never-started box could be that."""
    chosen = str(op.params.get("restore_from") or "")
    if not chosen:
        chosen = suspended_with(db, op.agent) or LATEST_BACKUP
        op.remember(restore_from=chosen)
    return chosen


def suspended_with(db: Engine, agent: str) -> str:
    """The backup the agent's last finished suspend took ("" if it ran with --no-backup)."""
    done = [o for o in ops_of(db, agent) if o.kind == "suspend" and o.state == "done"]
    return str(done[-1].params.get("backup") or "") if done else ""


def _mark_resumed(ctx: Context, name: str) -> dict[str, object]:
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, name)
        if agent.state == AgentState.SUSPENDED.value:  # the provision step must have moved it
            raise StateError(f"agent {name} is still suspended after its provision step")
        agent.suspended_at = None
        session.add(agent)
        return {"state": agent.state}


def result(ctx: Records, op: Op, detail: dict[str, object]) -> LifecycleResult:
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        state = repo.get_agent(session, op.agent).state
    return LifecycleResult(op.agent, op.kind, state, op.id, tuple(op.log.results), detail,
                           op.log.elapsed())  # fmt: skip
