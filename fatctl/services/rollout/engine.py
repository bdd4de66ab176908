"""The rollout engine: waves of per-host upgrades, recorded step by step, resumable and abortable.

A rollout runs under the lease `rollout:<id>`, each host under `agent:<name>` (the lease every
flow that changes a box takes, `common.leases`). Before a host is touched its step is `running`
in the database; after, it is `succeeded`, `failed`, `rolled_back` or `unreachable`. `resume`
skips finished steps and re-verifies `running` ones by reading the box's `current` link first,
so no host is upgraded twice. After each wave the halt rule of `rollout.plan` decides whether to
go on; `abort` switches upgraded hosts back.

The engine names no job kind: it looks the rollout's kind up in the `Run`'s registry
(`rollout.kinds`). Two kinds exist: `upgrade` (a runtime version, `rollout.upgrade`) and
`converge` (re-rendered configuration, `converge.job`; its per-host target is a digest of the
files). With `RolloutPolicy.snapshot`, each box is snapshotted at Hetzner before it is touched
and the image id is recorded on its step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fatctl.domain import RolloutPolicy, RolloutState, StepPhase
from fatctl.errors import FatctlError, StateError
from fatctl.pacing.poll import Poll
from fatctl.remote.commands.converge import ConvergeLayout
from fatctl.remote.commands.upgrade import BoxLayout
from fatctl.services.common.leases import ROLLOUT_TTL_S, agent_lease, box_step_ttl, rollout_lease
from fatctl.services.common.open_ops import OpInProgress, refuse_while_open
from fatctl.services.common.targets import select_targets
from fatctl.services.rollout import records as rec
from fatctl.services.rollout.kinds import (
    JobKind,
    backup_first,
    kind_of,
    registered,
    snapshot_first,
)
from fatctl.services.rollout.plan import DONE_PHASES, plan_waves, should_halt
from fatctl.services.rollout.upgrade import HostOutcome
from fatctl.state.leases import free_ones, lease

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.state.models import RolloutStep

EventFn = Callable[..., None]  # Output.event(kind, **fields)


@dataclass
class Run:
    """What one invocation needs: where, how, and who to tell."""

    engine: Engine
    settings: Settings
    layout: BoxLayout
    actor: str
    event: EventFn
    poll: Poll = field(default_factory=Poll)  # the health gates' pause between passes
    targets: dict[str, Target] = field(default_factory=dict)
    progress: list[int] = field(default_factory=lambda: [0, 0])  # hosts done, hosts in rollout
    lock: threading.Lock = field(default_factory=threading.Lock)
    files: ConvergeLayout = field(default_factory=ConvergeLayout)  # converge: where files live
    https: bool = True  # the HTTPS half of the gate, where `<agent>.<domain>` resolves
    # The job kinds this run can drive: those registered when it was built (see `kinds`).
    kinds: dict[str, JobKind] = field(default_factory=registered)

    def tick(self) -> str:
        """`done/total` for the overall progress shown with each host's outcome."""
        with self.lock:
            self.progress[0] += 1
            return f"{self.progress[0]}/{self.progress[1]}"


@dataclass(frozen=True)
class Job:
    """The recorded rollout as the host steps need it."""

    rollout_id: int
    kind: str
    target: str
    policy: RolloutPolicy
    extra: dict[str, Any]


@dataclass(frozen=True)
class Report:
    rollout_id: int
    state: str
    reason: str
    rows: list[dict[str, Any]]

    @property
    def halted(self) -> bool:
        return self.state == RolloutState.HALTED


def start(run: Run, targets: Sequence[Target], version: str, policy: RolloutPolicy) -> Report:
    """Record a new rollout of `version` over `targets` and drive it."""
    return begin(run, targets, "upgrade", version, policy)


def begin(
    run: Run,
    targets: Sequence[Target],
    kind: str,
    target: str,
    policy: RolloutPolicy,
    per_host: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Report:
    """Record a new rollout of any kind (`per_host`: each host's own target) and drive it."""
    waves = plan_waves([t.name for t in targets], policy)
    run.targets = {t.name: t for t in targets}
    rollout_id = rec.create(
        run.engine,
        kind=kind,
        version=target,
        policy=policy,
        waves=waves,
        actor=run.actor,
        per_host=per_host,
        extra=extra,
    )
    run.event(
        "rollout.start",
        rollout=rollout_id,
        change=kind,
        version=target,
        hosts=len(targets),
        waves=len(waves),
    )
    return _drive(run, rollout_id)


def resume(run: Run, rollout_id: int) -> Report:
    rollout, _ = rec.load(run.engine, rollout_id)
    if rollout.state != RolloutState.RUNNING:
        raise StateError(f"rollout {rollout_id} is {rollout.state}: only a running one resumes")
    run.event("rollout.resume", rollout=rollout_id, version=rollout.target)
    return _drive(run, rollout_id)


def _targets_for(run: Run, names: Sequence[str]) -> dict[str, Target]:
    missing = [n for n in names if n not in run.targets]
    if missing:
        found = select_targets(run.engine, run.settings, names=missing)
        run.targets.update({t.name: t for t in found})
    return run.targets


def _drive(run: Run, rollout_id: int) -> Report:
    from fatctl.remote.runner import Pool

    with lease(run.engine, rollout_lease(rollout_id), ttl_s=ROLLOUT_TTL_S), Pool() as pool:
        rollout, steps = rec.load(run.engine, rollout_id)
        policy = rec.policy_of(rollout)
        job = _job(rollout)
        _targets_for(run, [name for _, name in steps])
        run.progress = [sum(s.phase in DONE_PHASES for s, _ in steps), len(steps)]
        waves = sorted({s.wave for s, _ in steps})
        if waves:  # handshakes for the first wave overlap the writes that open it
            pool.warm([run.targets[n] for _, n in _pending(steps, waves[0]) if n in run.targets])
        for index, wave in enumerate(waves):
            todo = _pending(steps, wave)
            if index + 1 < len(waves):
                # Handshakes for the next wave overlap this one's health-gate waits.
                later = _pending(steps, waves[index + 1])
                pool.warm([run.targets[n] for _, n in later if n in run.targets])
            if todo:
                run.event("wave.start", rollout=rollout_id, wave=wave, hosts=[n for _, n in todo])
                _run_wave(run, pool, job, todo)
            rollout, steps = rec.load(run.engine, rollout_id)
            if should_halt([s.phase for s, _ in steps], policy, canary_wave=wave == 0):
                return _end(
                    run,
                    rollout_id,
                    RolloutState.HALTED,
                    f"failures exceed policy after wave {wave}",
                )
        return _end(run, rollout_id, RolloutState.COMPLETED, "")


def _pending(steps: list[tuple[RolloutStep, str]], wave: int) -> list[tuple[RolloutStep, str]]:
    """The wave's steps not yet finished (a resumed rollout skips the rest)."""
    return [(s, n) for s, n in steps if s.wave == wave and s.phase not in DONE_PHASES]


def _job(rollout: Any) -> Job:
    assert rollout.id is not None
    policy = rec.policy_of(rollout)
    return Job(rollout.id, rollout.kind, rollout.target, policy, rec.extra_of(rollout))


def _run_wave(run: Run, pool: Pool, job: Job, todo: list[tuple[RolloutStep, str]]) -> None:
    """The wave's hosts at once. The free box leases are taken, and those steps marked
    `running`, in two transactions for the whole wave (one per box before: with SQLite they
    queue, and the last box started its work a quarter second after the first); a busy box
    takes its lease alone in its own step, waiting as the policy says."""
    lease_of = {name: agent_lease(name) for _, name in todo}
    with free_ones(
        run.engine, list(lease_of.values()), ttl_s=box_step_ttl(job.policy.health_timeout_s)
    ) as taken:
        leased = {name for name, lease_name in lease_of.items() if lease_name in taken}
        rec.mark_running(run.engine, [s.id for s, n in todo if n in leased and s.id is not None])
        with ThreadPoolExecutor(max_workers=len(todo)) as workers:
            futures = [
                workers.submit(_host_step, run, pool, job, s, n, n in leased) for s, n in todo
            ]
            for future in futures:
                future.result()


def _host_step(
    run: Run, pool: Pool, job: Job, step: RolloutStep, name: str, leased: bool = False
) -> None:
    """One host under its box lease (`leased`: taken, and the step marked running, with the
    wave's), recorded before and after the remote work."""
    assert step.id is not None
    step_id, agent_pk = step.id, step.agent_pk
    try:
        with nullcontext() if leased else _box_lease(run, name, job.policy):
            if not leased:
                rec.update_step(run.engine, step_id, phase=StepPhase.RUNNING)
            refuse_while_open(run.engine, name, job.kind)  # under the box lease: no race
            work = kind_of(run.kinds, job.kind).work(run, pool, job, step, name)

            def before_change(old: str) -> None:
                # Called once the box is known to change, before anything on it does: record
                # where it was, then snapshot it (a box with nothing to change costs nothing)
                # and have it back its state up.
                rec.update_step(run.engine, step_id, from_version=old)
                snapshot_first(run, job, step, name)
                backup_first(run, pool, job, step, name)

            outcome = work.apply(run.targets[name], before_change, step.from_version)
    except OpInProgress as exc:  # a lifecycle op owns the box: skipped, not a failure
        outcome = HostOutcome(StepPhase.SKIPPED, step.from_version, exc.one_line())
    except FatctlError as exc:  # busy box lease, failed snapshot, unrenderable config
        outcome = HostOutcome(StepPhase.FAILED, step.from_version, exc.one_line())
    note = "; ".join(outcome.notes) if outcome.phase == StepPhase.SUCCEEDED else ""
    upgraded = outcome.phase == StepPhase.SUCCEEDED and kind_of(run.kinds, job.kind).sets_runtime
    rec.update_step(
        run.engine,
        step_id,
        runtime=(agent_pk, job.target) if upgraded else None,
        phase=outcome.phase,
        from_version=outcome.from_version,
        error=outcome.error or note,
    )
    run.event(
        "host.done",
        agent=name,
        phase=outcome.phase,
        from_version=outcome.from_version,
        error=outcome.error,
        notes=list(outcome.notes),
        progress=run.tick(),
    )


def _end(run: Run, rollout_id: int, state: str, reason: str) -> Report:
    rec.finish(run.engine, rollout_id, state, reason, run.actor)
    _, steps = rec.load(run.engine, rollout_id)
    run.event(f"rollout.{state}", rollout=rollout_id, reason=reason)
    return Report(rollout_id, state, reason, rec.step_rows(steps))


def abort(run: Run, rollout_id: int) -> Report:
    """Switch every upgraded (or half-upgraded) host back to its previous version."""
    from fatctl.remote.runner import Pool

    with lease(run.engine, rollout_lease(rollout_id), ttl_s=ROLLOUT_TTL_S), Pool() as pool:
        rollout, steps = rec.load(run.engine, rollout_id)
        if rollout.state in (RolloutState.ABORTED, RolloutState.COMPLETED) and not any(
            s.phase == StepPhase.SUCCEEDED for s, _ in steps
        ):
            raise StateError(f"rollout {rollout_id} is {rollout.state}: nothing to roll back")
        job = _job(rollout)
        back = [(s, n) for s, n in steps if s.phase in (StepPhase.SUCCEEDED, StepPhase.RUNNING)]
        _targets_for(run, [n for _, n in back])
        run.event("rollout.abort", rollout=rollout_id, hosts=[n for _, n in back])
        with ThreadPoolExecutor(max_workers=max(1, len(back))) as workers:
            for future in [workers.submit(_undo, run, pool, job, s, n) for s, n in back]:
                future.result()
        for step, _ in steps:
            if step.phase == StepPhase.PENDING and step.id is not None:
                rec.update_step(run.engine, step.id, phase=StepPhase.CANCELLED)
        return _end(run, rollout_id, RolloutState.ABORTED, "aborted by operator")


def _box_lease(run: Run, name: str, policy: RolloutPolicy) -> AbstractContextManager[str]:
    """One run at a time per agent: the same `agent:<name>` lease provision, destroy, rebuild and
    apply take, so a rollout never overlaps a destroy."""
    return lease(run.engine, agent_lease(name), ttl_s=box_step_ttl(policy.health_timeout_s))


def _undo(run: Run, pool: Pool, job: Job, step: RolloutStep, name: str) -> None:
    assert step.id is not None
    try:
        with _box_lease(run, name, job.policy):
            work = kind_of(run.kinds, job.kind).undo(run, pool, job, step, name)
            outcome = work.roll_back_to(run.targets[name], step.from_version)
    except FatctlError as exc:  # another run holds the box: leave it as recorded
        outcome = HostOutcome(step.phase, step.from_version, exc.one_line())
    rec.update_step(run.engine, step.id, phase=outcome.phase, error=outcome.error)
    if outcome.phase == StepPhase.ROLLED_BACK and kind_of(run.kinds, job.kind).sets_runtime:
        rec.set_runtime(run.engine, step.agent_pk, step.from_version)
    run.event(
        "host.rollback",
        agent=name,
        phase=outcome.phase,
        to_version=step.from_version,
        error=outcome.error,
    )
