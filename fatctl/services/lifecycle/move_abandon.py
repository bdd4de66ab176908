"""`fatctl move AGENT --abandon`: give up an unfinished move; the agent stays on its old box.

A move that cannot finish (no capacity for the type in the new location, a replacement that
never passes its health gate) leaves its op open, and an open op blocks every other flow of the
agent, `destroy` included. Giving it up undoes the move in reverse, each step idempotent so a
killed run is simply rerun:

dns (A/AAAA back to the old box's IPs; unchanged when the move had not switched them) ->
discard (the replacement server `<name>-mv<op>` and its primary IPs deleted, found by the op's
label) -> row (the agent's row back on the old server, IPs, location and type) -> start (the
old gateway, which the move's backup stopped and kept stopped, serving again: a backup still
running waited for, the runtime mask lifted, the files synced to the stored secrets, the unit
started, `fat-health` passed: `ready` again).

The op is marked `abandoning` before the first write: from then on a plain rerun of the move is
refused (its replacement may be gone, and `retire` would delete the old, only box), and every
refusal names `fatctl move AGENT --abandon`. The op is then closed `abandoned` (closed as
`done` is: no longer the agent's open op).
Refused once the move has retired the old box (its server gone): only finishing the move
keeps the customer then. The backup the move took stays in R2 with the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloud_init import layout as L
from fatctl.domain import AgentState
from fatctl.errors import BadInput
from fatctl.remote.commands.services import BACKUP_WAIT_S, systemctl, unmask_after_keep_stopped
from fatctl.remote.commands.shell import maybe_sudo
from fatctl.services.common.health import wait_healthy
from fatctl.services.common.leases import agent_lease
from fatctl.services.common.open_ops import ABANDONED, open_op_view
from fatctl.services.common.steps import StepLog
from fatctl.services.common.targets import agent_target
from fatctl.services.lifecycle.move import MOVE_STEPS, move_engine, provision_flow
from fatctl.services.lifecycle.ops import LIFECYCLE_TTL_S, close_op, mark_op
from fatctl.services.lifecycle.suspend import Context, LifecycleResult
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from fatctl.domain import BoxInfo
    from fatctl.infra.engine import Replacing
    from fatctl.services.common.open_ops import OpView

RETIRE = MOVE_STEPS.index("retire")


def abandon(ctx: Context, name: str) -> LifecycleResult:
    """Give up `name`'s unfinished move and bring it back on its old box."""
    with lease(ctx.db, agent_lease(name), ttl_s=LIFECYCLE_TTL_S, shared=True):
        view = _open_move(ctx, name)
        engine, replacer = move_engine(ctx, name)
        old = engine.status(name)  # the agent's own server: lookups leave the replacement out
        if old is None or _retired(view):
            raise BadInput(f"the move of {name} has retired its old server: it can only be "
                           "finished", hint=f"`{view.command(name)}`")  # fmt: skip
        # Before the first write: from here a plain rerun of the move is refused (it would
        # retire the old box for a replacement this abandon may have deleted already).
        mark_op(ctx.db, view.id, abandoning=True)
        log = StepLog(ctx.db, name, ctx.actor, ctx.emit, flow="move-abandon")
        log.run("dns", lambda: _dns_back(ctx, name, old))
        log.run("discard", lambda: _discard(replacer, name, view.id))
        log.run("row", lambda: _row_back(ctx, name, old))
        if ctx.skip_box:
            log.note("start", "skipped", "no box to reach (--no-box)")
        else:
            log.run("start", lambda: _start_old(ctx, name))
        close_op(ctx.db, view.id, ABANDONED, "", ctx.clock)
    with session_scope(ctx.db) as session:
        from fatctl.state import repo

        state = repo.get_agent(session, name).state
    detail: dict[str, object] = {"location": old.location, "server_type": old.server_type,
                                 "server_id": old.server_id, "ipv4": old.ipv4, "ipv6": old.ipv6,
                                 "abandoned_op": view.id}  # fmt: skip
    return LifecycleResult(name, "move-abandon", state, view.id, tuple(log.results), detail,
                           log.elapsed())  # fmt: skip


def _open_move(ctx: Context, name: str) -> OpView:
    with session_scope(ctx.db) as session:
        view = open_op_view(session, name)
    if view is None or view.kind != "move":
        what = f"an unfinished {view.describe()}" if view else "no unfinished op"
        raise BadInput(f"agent {name} has {what}: there is no move to abandon")
    return view


def _retired(view: OpView) -> bool:
    """Whether the move finished retiring the old box (a run killed inside `retire` may have
    deleted the server without recording it: the cloud lookup catches that one)."""
    return view.last_step in MOVE_STEPS and MOVE_STEPS.index(view.last_step) >= RETIRE


def _dns_back(ctx: Context, name: str, old: BoxInfo) -> dict[str, object]:
    from fatctl.services.provision.dns import upsert_records

    changes = upsert_records(provision_flow(ctx, name), old.ipv4, old.ipv6)
    return {"records": ", ".join(f"{c.name} {c.action}" for c in changes) or "unchanged"}


def _discard(replacer: Replacing, name: str, op_id: int) -> dict[str, object]:
    replacer.discard_replacement(name, op_id)
    return {"replacement": "deleted with its primary IPs"}


def _row_back(ctx: Context, name: str, old: BoxInfo) -> dict[str, object]:
    """The row on the old box again; `ready` waits for the health gate (`start`), and with no
    box to reach (--no-box) the state is left as the move left it."""
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, name)
        agent.server_id, agent.ipv4, agent.ipv6 = old.server_id, old.ipv4, old.ipv6
        agent.primary_ipv4_id, agent.primary_ipv6_id = old.primary_ipv4_id, old.primary_ipv6_id
        agent.location, agent.server_type = old.location, old.server_type
        agent.last_error = ""  # the move's failure, now moot
        session.add(agent)
    return {"server_id": old.server_id, "location": old.location}


def _start_old(ctx: Context, name: str) -> dict[str, object]:
    """The old gateway serving again: a backup still running waited for, the runtime mask of
    the move's backup lifted, the box's files synced to the stored secrets (the move may have
    issued R2 credentials that only the replacement received), the unit started, the health
    gate passed."""
    from fatctl.remote.runner import Pool
    from fatctl.services.provision.box import BoxNotHealthy, close_pool, start_gateway
    from fatctl.state import repo

    target = agent_target(ctx.db, ctx.settings, name)
    sudo = target.user != "root"
    flow = provision_flow(ctx, name)
    try:
        with Pool() as pool:
            box = pool.get(target)
            box.run(maybe_sudo(unmask_after_keep_stopped(), needed=sudo),
                    timeout=BACKUP_WAIT_S + 60).check("lifting the gateway's mask")  # fmt: skip
            synced = start_gateway(flow)
            box.run(maybe_sudo(systemctl("start", L.GATEWAY_UNIT), needed=sudo),
                    timeout=180).check("starting the old gateway again")  # fmt: skip
            report = wait_healthy(pool, target, ctx.backoff, BoxNotHealthy)
    finally:
        close_pool(flow)
    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, name)
        agent.last_step = "ready"
        repo.set_state(session, agent, AgentState.READY)
    return {"gateway": "started", "files": synced.get("files", ""),
            "runtime_version": report.get("runtime_version", "")}  # fmt: skip
