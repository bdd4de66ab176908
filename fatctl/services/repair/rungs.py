"""One repair of one box: the policy asked again under the agent's lease, then the rung, its
health gate, its row in `repair_attempts` and its audit (`repair.<rung>`), or the page.

The rungs, gentlest first:
- restart: `systemctl restart openclaw-gateway.service` over SSH, then the health gate;
- reboot: the engine's reboot (Hetzner's `reboot` action: ACPI, the OS shuts down cleanly),
  then the health gate (its backoff covers the boot);
- rebuild: `fatctl rebuild` as a lifecycle op (`services.lifecycle.rebuild`): a backup with the
  gateway stopped (the freshest state; a box too broken to take one is rebuilt from the newest
  backup it took before: the same op rerun with `no_backup`), a snapshot of the broken disk, a
  reinstall, the provision flow with the backup restored, its own health gate.

A failed last rung pages at once: a failed rebuild leaves its lifecycle op open, and the policy
leaves an agent with an open op alone, so waiting for the next sweep would never page it.

The decision is taken again here because the sweep that chose the rung may be old by the time
the agents queue runs it (a rebuild of the same box before it, a sweep since): a rung the policy
no longer chooses is skipped, never run twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from cloud_init import layout as L
from fatctl.errors import FatctlError, LeaseHeld, RemoteError
from fatctl.remote.commands.services import fat_health, systemctl
from fatctl.remote.commands.shell import maybe_sudo
from fatctl.services.common.audit import audit_change
from fatctl.services.common.health import wait_healthy
from fatctl.services.common.leases import PROVISION_TTL_S, agent_lease
from fatctl.services.common.open_ops import DONE
from fatctl.services.common.targets import agent_target
from fatctl.services.lifecycle.ops import ops_of
from fatctl.services.lifecycle.rebuild import rebuild
from fatctl.services.repair import records
from fatctl.services.repair.ladder import (
    FAILED,
    OK,
    PAGE,
    REBOOT,
    REBUILD,
    RESTART,
    RUNNING,
    Page,
    Policies,
    Repair,
    decide,
    gate_seconds,
)
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from fatctl.pacing.poll import Backoff
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.services.lifecycle.suspend import Context

BUSY, STALE = "busy", "stale"
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"  # new at every boot (proc(5))
# The whole rung under the agent's lease: a rebuild provisions and restores under it.
RUNG_TTL_S = PROVISION_TTL_S


class RepairFailed(FatctlError):
    exit_code = 1


@dataclass(frozen=True)
class Outcome:
    agent: str
    rung: str
    result: str  # ok, failed, paged, busy (lease held), stale (the policy no longer asks it)
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"agent": self.agent, "rung": self.rung, "result": self.result,
                "detail": self.detail}  # fmt: skip


def repair(ctx: Context, agent: str, rung: str, policies: Policies, now: datetime) -> Outcome:
    """Run `rung` (or the page) on `agent` if the policy still chooses it now."""
    try:
        with lease(ctx.db, agent_lease(agent), ttl_s=RUNG_TTL_S, shared=True):
            return _decided(ctx, agent, rung, policies, now)
    except LeaseHeld as exc:  # a provision, destroy, rollout step or op has the box
        return Outcome(agent, rung, BUSY, exc.one_line())


def _decided(ctx: Context, agent: str, rung: str, policies: Policies, now: datetime) -> Outcome:
    _close_interrupted(ctx, agent, now)
    found = records.facts(ctx.db, [agent])
    if not found:
        return Outcome(agent, rung, STALE, "agent no longer recorded")
    one = found[0]
    action = decide(one.probes, one.attempts, one.box, policies.of(one.box.plan), now)
    if isinstance(action, Page) and rung == PAGE:
        records.page(ctx.db, agent, action.why, ctx.actor, now)
        return Outcome(agent, PAGE, "paged", action.why)
    if not (isinstance(action, Repair) and action.rung == rung):
        return Outcome(agent, rung, STALE, f"the policy now says {action}")
    done = _run_rung(ctx, agent, action, now)
    if done.result == FAILED and action.step == len(policies.of(one.box.plan).rungs):
        why = f"repair ladder exhausted: the {rung} failed ({done.detail})"
        records.page(ctx.db, agent, why, ctx.actor, ctx.clock())
        return Outcome(agent, rung, FAILED, f"{done.detail}; paged")
    return done


def _run_rung(ctx: Context, agent: str, action: Repair, now: datetime) -> Outcome:
    attempt = records.start_attempt(ctx.db, agent, action.rung, now)
    detail = {"rung": action.rung, "step": action.step, "attempt": attempt}
    try:
        said = _RUNGS[action.rung](ctx, agent)
    except FatctlError as exc:
        line = records.clip(exc.one_line())
        records.finish_attempt(ctx.db, attempt, FAILED, line, ctx.clock())
        audit_change(ctx.db, ctx.actor, f"repair.{action.rung}", agent, FAILED,
                     {**detail, "error": line})  # fmt: skip
        return Outcome(agent, action.rung, FAILED, line)
    records.finish_attempt(ctx.db, attempt, OK, said, ctx.clock())
    audit_change(ctx.db, ctx.actor, f"repair.{action.rung}", agent, OK, {**detail, "note": said})
    return Outcome(agent, action.rung, OK, said)


def _close_interrupted(ctx: Context, agent: str, now: datetime) -> None:
    """A row this very repair left `running` (its process died mid-rung, DBOS runs it again):
    closed as failed, so the policy judges the rerun as it would a fresh one."""
    from sqlmodel import col, select

    from fatctl.state.models import Agent, RepairAttempt

    with session_scope(ctx.db) as session:
        rows = session.exec(
            select(RepairAttempt).join(Agent, col(Agent.id) == col(RepairAttempt.agent_pk))
            .where(Agent.name == agent, RepairAttempt.result == RUNNING)
        ).all()  # fmt: skip
        for row in rows:
            if records.utc(row.started_at) == now:
                row.result, row.finished_at = FAILED, ctx.clock()
                row.detail = "interrupted: fatctl stopped during the rung"
                session.add(row)


def _restart(ctx: Context, agent: str) -> str:
    from fatctl.remote.runner import Pool

    target = agent_target(ctx.db, ctx.settings, agent)
    command = maybe_sudo(systemctl("restart", L.GATEWAY_UNIT), needed=target.user != "root")
    with Pool() as pool:
        try:
            pool.get(target).run(command, timeout=180).check("restarting the gateway")
        except RemoteError as exc:
            raise RepairFailed(exc.one_line()) from None
        wait_healthy(pool, target, _gate(ctx), RepairFailed)
    return "gateway restarted, box healthy"


def _gate(ctx: Context) -> Backoff:
    """The runtime's pacing, for at most FATCTL_REPAIR_GATE_S: a restart or reboot that has not
    brought the box back by then has failed, and the next rung is due."""
    return replace(ctx.backoff, timeout=min(ctx.backoff.timeout, gate_seconds(ctx.settings)))


def _reboot(ctx: Context, agent: str) -> str:
    from fatctl.remote.runner import Pool

    target = agent_target(ctx.db, ctx.settings, agent)
    with Pool() as pool:
        before = _boot_id(pool, target)  # None: unreachable now, any answer later is news
        ctx.infra.reboot(agent)
        _gate(ctx).wait_for(f"{agent} back from its reboot",
                             lambda: _rebooted_and_healthy(pool, target, before))  # fmt: skip
    return "server rebooted, box healthy"


def _boot_id(pool: Pool, target: Target) -> str | None:
    try:
        result = pool.get(target).run(BOOT_ID, timeout=30)
    except RemoteError:
        return None
    return result.stdout.strip() if result.ok else None


def _rebooted_and_healthy(pool: Pool, target: Target, before: str | None) -> bool | None:
    """True once the box runs a new boot (Hetzner's reboot is an ACPI request: the old system
    may answer for a while) and says healthy; None meanwhile, also while SSH is down."""
    now = _boot_id(pool, target)
    if now is None or now == before:
        return None
    try:
        result = pool.get(target).run(fat_health(), timeout=60)
        report = json.loads(result.stdout) if result.ok else {}
    except (RemoteError, ValueError):
        return None
    return True if isinstance(report, dict) and report.get("healthy") else None


def _rebuild(ctx: Context, agent: str) -> str:
    try:
        done = rebuild(ctx, agent, snapshot=True)
    except FatctlError:
        if not _stopped_at_backup(ctx, agent):
            raise
        # Too broken to back up: the same op again, from the newest backup it took before.
        done = rebuild(ctx, agent, snapshot=True, no_backup=True)
    restored = done.detail.get("restored") or "no backup"
    return f"rebuilt ({restored} restored), {done.state}"


def _stopped_at_backup(ctx: Context, agent: str) -> bool:
    """The agent's rebuild op failed before finishing any step: at its backup."""
    ops = ops_of(ctx.db, agent)
    last = ops[-1] if ops else None
    return last is not None and last.kind == "rebuild" and last.state != DONE and not last.last_step


_RUNGS = {RESTART: _restart, REBOOT: _reboot, REBUILD: _rebuild}
