"""`fatctl move AGENT --location L [--type T]`: the agent on a new server elsewhere, the
customer kept.

backup (kind `pre-move`; the old gateway stopped first and left stopped: the same Telegram bot
or WhatsApp login must never serve from two boxes; `--no-backup` skips it, audited) ->
addresses (new primary IPs in L: Hetzner binds a primary IP to its location) -> create (the
replacement server `<name>-mv<op>` on them, labelled `agent=<name>`, `op=<op>`; the agent's
row then points at it, so the box steps reach it) -> provision (the provision flow continued
after `infra`: ssh, cloud-init, secrets with gateway.env held, restore of the backup this op
took, start; its health gate is this op's own, below) -> health (`fat-health`) -> dns (A/AAAA
to the new IPs) -> https (through the name, which now points at the new box: Caddy gets its
certificate once DNS does) -> retire (only now: the old server deleted, its primary IPs
released) -> promote (the replacement renamed and relabelled as the agent's own) -> state
(`ready` at the new location and type).

Same location with only a new type is `fatctl box resize` (the disk kept): refused. Needs an
engine that can make a replacement (`Capability.REPLACING`: hcloud; the Pulumi engine's stack
has one server per agent and is refused). A lifecycle op (`lifecycle.ops`): a rerun after a
failure or a kill keeps the finished steps and adopts what a killed step made (by the op's
labels), so a move always ends with one server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from fatctl import validation
from fatctl.domain import AgentState
from fatctl.errors import BadInput
from fatctl.infra.engine import replacing
from fatctl.infra.projects import engine_in_project
from fatctl.services.common.health import wait_healthy
from fatctl.services.common.open_ops import open_op_view
from fatctl.services.common.steps import BOX_STEPS, LATEST_BACKUP, StepLog
from fatctl.services.common.targets import agent_target
from fatctl.services.lifecycle.ops import lifecycle_op
from fatctl.services.lifecycle.rebuild import render
from fatctl.services.lifecycle.suspend import (
    Context,
    LifecycleResult,
    backup_stopped,
    require_backup_box,
    result,
)
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlmodel import Session

    from fatctl.domain import AgentSpec
    from fatctl.infra.engine import InfraEngine, Replacing
    from fatctl.services.common.open_ops import OpView
    from fatctl.services.lifecycle.ops import Op
    from fatctl.services.provision.flow import Flow

MOVE_STEPS = ("backup", "addresses", "create", "provision", "health", "dns", "https", "retire",
              "promote", "state")  # fmt: skip
MOVABLE = (AgentState.READY, AgentState.DEGRADED, AgentState.PROVISIONING)


def move(
    ctx: Context,
    name: str,
    *,
    location: str,
    server_type: str | None = None,
    no_backup: bool = False,
) -> LifecycleResult:
    """Move `name` to `location` (or finish its unfinished move)."""
    replacer = checked(ctx, name, location, server_type, no_backup)
    params: dict[str, object] = {"location": location}
    # Only when given: a rerun without --type keeps the type the move was asked for, and one
    # without --no-backup keeps the record that it was skipped (the op's stored params are
    # overlaid by these).
    if server_type is not None:
        params["server_type"] = server_type
    if no_backup:
        params["no_backup"] = True
    check = _movable(name, location, server_type)
    with lifecycle_op(ctx.db, name, "move", ctx.actor, steps=MOVE_STEPS, params=params,
                      emit=ctx.emit, check=check, clock=ctx.clock) as op:  # fmt: skip
        spec, user_data = _render(ctx, op)
        if op.params.get("no_backup"):
            op.skip("backup", "skipped by --no-backup")
        else:
            op.run("backup", lambda: backup_stopped(ctx, op, "pre-move"))
        op.run("addresses", lambda: _addresses(op, replacer, spec))
        op.run("create", lambda: _create(ctx, op, replacer, spec, user_data))
        op.run("provision", lambda: _provision(ctx, op))
        _box_step(ctx, op, "health", lambda: _health(ctx, op))
        op.run("dns", lambda: _dns(ctx, op, spec))
        _box_step(ctx, op, "https", lambda: _https(ctx, op, spec))
        op.run("retire", lambda: _retire(op, replacer, spec))
        op.run("promote", lambda: _promote(op, replacer, spec))
        op.run("state", lambda: _mark_moved(ctx, op, spec))
    shown = ("location", "server_type", "server_id", "ipv4", "ipv6", "backup", "restored")
    return result(ctx, op, {k: op.params.get(k, "") for k in shown})


def checked(
    ctx: Context, name: str, location: str, server_type: str | None, no_backup: bool
) -> Replacing:
    """Every refusal that needs no cloud call: the flags, the settings, the engine."""
    validation.location(location)
    if server_type is not None:
        validation.server_type(server_type)
    require_backup_box(ctx, no_backup, "move")
    ctx.settings.require("hcloud_token")
    return move_engine(ctx, name)[1]


def move_engine(ctx: Context, name: str) -> tuple[InfraEngine, Replacing]:
    """The engine of the agent's project and its replacing side (`move`, `move --abandon`);
    refused in one line for an agent whose engine makes no replacement."""
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        row = repo.get_agent(session, name)
        project, recorded = row.project or "", row.engine
    engine = engine_in_project(ctx.infra, project)
    replacer = replacing(engine)
    if replacer is None or recorded not in ("", ctx.infra.name):
        # A Pulumi stack holds one server per agent; an hcloud move under it would leave the
        # stack describing a server that no longer exists.
        refused = recorded if replacer is not None else ctx.infra.name
        raise BadInput(f"the {refused} engine cannot move an agent (it makes no replacement "
                       "server): only agents on the hcloud engine move")  # fmt: skip
    return engine, replacer


def preview(
    ctx: Context, name: str, *, location: str, server_type: str | None, no_backup: bool
) -> dict[str, object]:
    """What `move` would do now (nothing is changed)."""
    from fatctl.state import repo

    checked(ctx, name, location, server_type, no_backup)
    with session_scope(ctx.db) as session:
        current = open_op_view(session, name)
        _movable(name, location, server_type)(session, current)
        agent = repo.get_agent(session, name)
        before = {"location": agent.location, "server_type": agent.server_type,
                  "ipv4": agent.ipv4, "ipv6": agent.ipv6}  # fmt: skip
    skipped = no_backup or bool(current and current.params.get("no_backup"))
    backup = "skipped: --no-backup" if skipped else "pre-move, old gateway stopped and kept"
    return {"agent": name, "from": before, "location": location,
            "server_type": server_type or (current.params.get("server_type") if current
                                           else "") or before["server_type"], "backup": backup,
            "new_server": f"{name}-mv<op id>, then renamed {name}",
            "ips": f"new primary IPs in {location}; the old ones released after the new box "
                   "is healthy and DNS points at it", "steps": list(MOVE_STEPS),
            "resumes": current.describe() if current else ""}  # fmt: skip


def _movable(
    name: str, location: str, server_type: str | None
) -> Callable[[Session, OpView | None], None]:
    """The op's `check`: a new move needs a live agent and another location; an open one is
    continued only towards the location and type it was asked for (its new IPs are there, and
    its replacement may exist with that type)."""

    def check(session: Session, current: OpView | None) -> None:
        from fatctl.state import repo

        if current is not None:
            if current.kind != "move":
                return
            if current.abandoning:
                # Its replacement may be gone already: a rerun would retire the only box.
                raise BadInput(f"the move of {name} is being abandoned: finish that with "
                               f"`{current.command(name)}`")  # fmt: skip
            asked = str(current.params.get("location") or "")
            asked_type = str(current.params.get("server_type") or "")
            other_type = server_type is not None and server_type != asked_type
            if (asked and asked != location) or other_type:
                flags = f"--location {asked or location}"
                flags += f" --type {asked_type}" if asked_type else " (without --type)"
                raise BadInput(f"the open move of {name} goes to {asked or location} "
                               f"{asked_type or 'on its current type'}: rerun it with "
                               f"{flags}")  # fmt: skip
            return
        agent = repo.get_agent(session, name)
        if agent.state not in {s.value for s in MOVABLE}:
            allowed = " or ".join(s.value for s in MOVABLE)
            raise BadInput(f"agent {name} is {agent.state}: move needs it {allowed}")
        if agent.location == location and server_type:
            raise BadInput(f"agent {name} is in {location} already: a new type there is "
                           f"`fatctl box resize {name} {server_type}` (the disk kept)")  # fmt: skip
        if agent.location == location:
            raise BadInput(f"agent {name} is in {location} already: nothing to move")

    return check


def _render(ctx: Context, op: Op) -> tuple[AgentSpec, str]:
    """The spec at the new location and type, and its user-data (the agent's pinned host
    keys, so SSH to the new box finds the key fatctl knows)."""
    from fatctl.services.provision.cloud import checked_user_data

    spec, _ = render(ctx, op.agent, None)
    spec = replace(spec, location=str(op.params["location"]),
                   server_type=str(op.params.get("server_type") or spec.server_type))  # fmt: skip
    return spec, checked_user_data(spec, validate=False)


def _addresses(op: Op, replacer: Replacing, spec: AgentSpec) -> dict[str, object]:
    got = replacer.reserve_replacement(spec, op.id)
    op.remember(ipv4=got.ipv4, ipv6=got.ipv6)
    return {"ipv4": got.ipv4, "ipv6": got.ipv6, "location": spec.location}


def _create(
    ctx: Context, op: Op, replacer: Replacing, spec: AgentSpec, user_data: str
) -> dict[str, object]:
    """The replacement server; the agent's row then points at it (`provisioning`, after
    `infra`), which is where the box steps and a rerun look for it."""
    from fatctl.state import repo

    info = replacer.create_replacement(spec, user_data=user_data, op_id=op.id)
    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, op.agent)
        agent.server_id, agent.ipv4, agent.ipv6 = info.server_id, info.ipv4, info.ipv6
        agent.primary_ipv4_id, agent.primary_ipv6_id = info.primary_ipv4_id, info.primary_ipv6_id
        agent.location, agent.server_type = spec.location, spec.server_type
        agent.last_step = "infra"
        repo.set_state(session, agent, AgentState.PROVISIONING)
    op.remember(server_id=info.server_id, ipv4=info.ipv4, ipv6=info.ipv6)
    return {"server_id": info.server_id, "ipv4": info.ipv4, "ipv6": info.ipv6}


def _provision(ctx: Context, op: Op) -> dict[str, object]:
    """The box steps up to the gateway's start, the backup restored before it; this op's own
    health, DNS and HTTPS steps follow (the name points at the old box until `dns`)."""
    from fatctl.services.provision.flow import Options, continue_provision

    restore = None
    if not ctx.skip_box:
        restore = str(op.params.get("backup") or op.params.get("restore_from") or LATEST_BACKUP)
    skip = BOX_STEPS if ctx.skip_box else frozenset({"health"})
    opts = Options(skip=skip, backoff=ctx.backoff, validate=not ctx.skip_box,
                   sandbox=ctx.settings.in_sandbox, emit=ctx.emit, clock=ctx.clock,
                   restore_from=restore,
                   chose_restore=lambda name: op.remember(restore_from=name))  # fmt: skip
    continue_provision(ctx.db, ctx.ring, ctx.settings, ctx.infra, op.agent, ctx.actor, opts)
    restored = str(op.params.get("restore_from") or restore or "nothing (no box)")
    op.remember(restored=restored)
    return {"restored": restored}


def _box_step(
    ctx: Context, op: Op, step: str, action: Callable[[], Mapping[str, object] | None]
) -> None:
    if ctx.skip_box:
        op.skip(step, "no box to reach (--no-box)")
    else:
        op.run(step, action)


def provision_flow(ctx: Context, name: str, spec: AgentSpec | None = None) -> Flow:
    """A provision `Flow` for the provision module's DNS and HTTPS functions."""
    from fatctl.services.provision.flow import Flow, Options

    opts = Options(backoff=ctx.backoff, sandbox=ctx.settings.in_sandbox, clock=ctx.clock)
    log = StepLog(ctx.db, name, ctx.actor, ctx.emit)
    return Flow(ctx.db, ctx.ring, ctx.settings, ctx.infra, ctx.actor, name, opts, log,
                spec=spec)  # fmt: skip


def _health(ctx: Context, op: Op) -> dict[str, object]:
    from fatctl.remote.runner import Pool
    from fatctl.services.provision.box import BoxNotHealthy

    target = agent_target(ctx.db, ctx.settings, op.agent)
    with Pool() as pool:
        report = wait_healthy(pool, target, ctx.backoff, BoxNotHealthy)
    return {"runtime_version": report.get("runtime_version", "")}


def _dns(ctx: Context, op: Op, spec: AgentSpec) -> dict[str, object]:
    from fatctl.services.provision.dns import upsert_records

    ipv4, ipv6 = str(op.params["ipv4"]), str(op.params["ipv6"])
    changes = upsert_records(provision_flow(ctx, op.agent, spec), ipv4, ipv6)
    return {"records": ", ".join(f"{c.name} {c.action}" for c in changes)}


def _https(ctx: Context, op: Op, spec: AgentSpec) -> dict[str, object]:
    from fatctl.remote.runner import Pool
    from fatctl.services.provision.box import check_https

    target = agent_target(ctx.db, ctx.settings, op.agent)
    with Pool() as pool:
        return {"https": check_https(provision_flow(ctx, op.agent, spec), target, pool)}


def _retire(op: Op, replacer: Replacing, spec: AgentSpec) -> dict[str, object]:
    replacer.retire(spec, keep_server_id=str(op.params["server_id"]))
    return {"old_server": "deleted", "old_primary_ips": "released"}


def _promote(op: Op, replacer: Replacing, spec: AgentSpec) -> dict[str, object]:
    info = replacer.promote(spec, op.id)
    return {"server": f"{info.server_id} named {spec.name}"}


def _mark_moved(ctx: Context, op: Op, spec: AgentSpec) -> dict[str, object]:
    """`ready` once the box steps ran (the API-only sandbox leaves it `provisioning`, as its
    provision does); the row already names the new server, IPs, location and type."""
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, op.agent)
        agent.location, agent.server_type = spec.location, spec.server_type
        if not ctx.skip_box:
            agent.last_step = "ready"
            repo.set_state(session, agent, AgentState.READY)
        session.add(agent)
        return {"state": agent.state, "location": spec.location, "server_type": spec.server_type}
