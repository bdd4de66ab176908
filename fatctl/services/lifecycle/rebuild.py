"""`fatctl rebuild AGENT`: the same server reinstalled on a fresh disk, the customer kept.

backup (kind `pre-rebuild`, the gateway stopped first and left stopped, so nothing the
customer does after it is lost; `--no-backup` skips it, audited) -> snapshot (Hetzner's, unless
`--no-snapshot`) -> infra (`engine.rebuild`: the same server, so the same primary IPs and DNS;
the user-data carries the agent's own host key, so SSH finds the key it pinned) -> the
provision flow continued after `infra` (`provision.flow.continue_provision`): ssh, cloud-init,
secrets with gateway.env held back, restore (the backup just taken; with `--no-backup` the
newest one in R2 not taken by the box's timer, resolved once and kept; none with
`--no-restore`), start, health gate, `ready`.

An agent without a box holding state (created, or provisioned API-only) is only reinstalled,
as before issue 18: `fatctl provision` continues it. Whether the box held state is decided once,
on the op's first run (a rerun finds the agent `provisioning`). A lifecycle op (`lifecycle.ops`):
a rerun after a failure or a kill keeps the finished steps, never takes a second backup of a
wiped disk, and restores the backup the first run took.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from fatctl.domain import AgentState
from fatctl.errors import NotFound
from fatctl.services.common.steps import LATEST_BACKUP
from fatctl.services.lifecycle.ops import lifecycle_op
from fatctl.services.lifecycle.suspend import (
    Context,
    LifecycleResult,
    agent_in,
    backup_stopped,
    result,
    snapshot_before,
)
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from fatctl.domain import AgentSpec
    from fatctl.services.lifecycle.ops import Op

REBUILD_STEPS = ("backup", "snapshot", "infra", "provision")
# A box that exists (or may): created and applied outside provisioning, half-provisioned, live.
REBUILDABLE = (
    AgentState.REQUESTED,
    AgentState.PROVISIONING,
    AgentState.READY,
    AgentState.DEGRADED,
)


def rebuild(
    ctx: Context,
    name: str,
    *,
    image: str | None = None,
    snapshot: bool = True,
    no_backup: bool = False,
    no_restore: bool = False,
) -> LifecycleResult:
    """Rebuild `name` (or finish its unfinished rebuild)."""
    spec, user_data = render(ctx, name, image)  # an unrenderable agent is refused here
    params = {"image": image or "", "snapshot": snapshot, "no_backup": no_backup,
              "no_restore": no_restore}  # fmt: skip
    check = agent_in(name, REBUILDABLE, "rebuild")
    with lifecycle_op(ctx.db, name, "rebuild", ctx.actor, steps=REBUILD_STEPS, params=params,
                      emit=ctx.emit, check=check, clock=ctx.clock) as op:  # fmt: skip
        if "holds_state" not in op.params:
            op.remember(holds_state=holds_state(ctx, name))
        if not op.params["holds_state"]:
            op.skip("backup", "no box holding state")
        elif op.params["no_backup"]:
            op.skip("backup", "skipped by --no-backup")
        else:
            op.run("backup", lambda: backup_stopped(ctx, op, "pre-rebuild"))
        if op.params["snapshot"]:
            op.run("snapshot", lambda: snapshot_before(ctx, op))
        else:
            op.skip("snapshot", "no snapshot asked (--no-snapshot)")
        op.run("infra", lambda: _reinstall(ctx, op, spec, user_data))
        if op.params["holds_state"]:
            op.run("provision", lambda: _provision(ctx, op))
        else:
            op.skip("provision", "never provisioned onto its box: `fatctl provision` continues")
    shown = ("server_id", "ipv4", "ipv6", "image", "backup", "snapshot_id", "restored")
    return result(ctx, op, {k: op.params.get(k, "") for k in shown})


def preview(
    ctx: Context, name: str, *, image: str | None, snapshot: bool, no_backup: bool,
    no_restore: bool,
) -> dict[str, object]:  # fmt: skip
    """What `rebuild` would do now (nothing is changed; the box must exist)."""
    spec, user_data = render(ctx, name, image)
    box = ctx.infra.status(spec)
    if box is None:
        raise NotFound(f"agent {name} has no server to rebuild")
    backup, restore = "none: no box holding state", "none: `fatctl provision` continues it"
    if holds_state(ctx, name):
        backup = "skipped: --no-backup" if no_backup else "pre-rebuild, gateway stopped"
        restore = "nothing (--no-restore)" if no_restore else (
            "the newest non-timer backup" if no_backup else "the pre-rebuild backup")  # fmt: skip
    return {"agent": name, "server_id": box.server_id, "image": spec.image,
            "user_data_bytes": len(user_data.encode()), "disk": "would be wiped", "ips": "kept",
            "backup": backup, "snapshot_first": snapshot, "restore": restore}  # fmt: skip


def render(ctx: Context, name: str, image: str | None) -> tuple[AgentSpec, str]:
    """The spec and user-data the box is reinstalled with: the newest golden image recorded
    for its runtime unless `image` is given, and the agent's host keys (pinned by fatctl)."""
    from fatctl.services.common.specs import build_spec, sandbox_spec
    from fatctl.services.provision.cloud import checked_user_data
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        agent = repo.get_agent(session, name)
        built = build_spec(session, agent, ctx.settings, ctx.ring, golden=image is None)
        spec = sandbox_spec(built, ctx.settings.in_sandbox)
    if image:
        spec = replace(spec, image=image)
    return spec, checked_user_data(spec, validate=False)


def holds_state(ctx: Context, name: str) -> bool:
    """The box has had its secrets, so the gateway may have run and hold customer state."""
    from fatctl.services.serving.push import has_box
    from fatctl.state import repo

    with session_scope(ctx.db) as session:
        return has_box(repo.get_agent(session, name))


def _reinstall(ctx: Context, op: Op, spec: AgentSpec, user_data: str) -> dict[str, object]:
    """The disk wiped and reinstalled; a box that held state is then provisioned again from
    `ssh` on (state `provisioning`, last step `infra`: its IPs and DNS are as they were)."""
    from fatctl.state import repo

    info = ctx.infra.rebuild(spec, spec.image, user_data=user_data)
    if op.params["holds_state"]:
        with session_scope(ctx.db) as session:
            agent = repo.get_agent(session, op.agent)
            agent.server_id, agent.ipv4, agent.ipv6 = info.server_id, info.ipv4, info.ipv6
            agent.last_step = "infra"
            repo.set_state(session, agent, AgentState.PROVISIONING)
    shown = {"server_id": info.server_id, "ipv4": info.ipv4, "ipv6": info.ipv6,
             "image": spec.image}  # fmt: skip
    op.remember(**shown)
    return {**shown, "disk": "reinstalled", "ips": "kept"}


def _provision(ctx: Context, op: Op) -> dict[str, object]:
    """The box steps, with the backup restored before the gateway's first start."""
    from fatctl.services.provision.flow import Options, continue_provision

    restore = None
    if not op.params["no_restore"]:
        # With --no-backup, "latest" is resolved on the box once (its newest backup not taken
        # by the timer) and kept: a rerun restores that one, never a newer timer backup.
        restore = str(op.params.get("backup") or op.params.get("restore_from") or LATEST_BACKUP)
    opts = Options(backoff=ctx.backoff, sandbox=ctx.settings.in_sandbox, emit=ctx.emit,
                   clock=ctx.clock, restore_from=restore,
                   chose_restore=lambda name: op.remember(restore_from=name))  # fmt: skip
    done = continue_provision(ctx.db, ctx.ring, ctx.settings, ctx.infra, op.agent, ctx.actor, opts)
    restore = str(op.params.get("restore_from") or restore or "")
    op.remember(restored=restore)
    return {"restored": restore or "nothing (--no-restore)", "state": done.state}
