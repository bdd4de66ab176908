"""The rollout engine's job kinds: a registry the per-host work is looked up in, and the
snapshot taken before a box changes.

The engine knows no kind by name. A kind (`upgrade` in `rollout.upgrade`, `converge` in
`fatctl.services.converge.job`) registers a `JobKind` when its module is imported; a `Run`
carries the registry it was built with, so a kind the caller never imported fails with one
clear line instead of a silent fallback. With `RolloutPolicy.snapshot`, the box is snapshotted
through the hcloud engine (the service behind `fatctl box snapshot`) once it is known to change
and before it is touched (a converge that finds a box unchanged takes none), once per step even
across resumes, and the image id is recorded on the step. With `RolloutPolicy.backup` (the
default), a kind that `backs_up` (upgrade; converge changes configuration only) has the box take
a state backup at the same moment, once per step, its name recorded in `rollout_steps.backup_key`
for a rollback that has to put it back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fatctl.domain import snapshot_labels
from fatctl.errors import FatctlError, StateError
from fatctl.infra import make_engine
from fatctl.services.backup.on_box import require_backup_key, take_backup
from fatctl.services.rollout import records as rec

if TYPE_CHECKING:
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.services.rollout.engine import Job, Run
    from fatctl.services.rollout.upgrade import HostOutcome
    from fatctl.state.models import RolloutStep


class HostWork(Protocol):
    """One host's step of any kind: do it (recording where the box was first), or undo it."""

    def apply(
        self, target: Target, before_change: Callable[[str], None], resumed_from: str
    ) -> HostOutcome: ...

    def roll_back_to(self, target: Target, previous: str) -> HostOutcome: ...


WorkFactory = Callable[["Run", "Pool", "Job", "RolloutStep", str], HostWork]


@dataclass(frozen=True)
class JobKind:
    """What a rollout of one kind runs on each host, and how it is undone.

    `sets_runtime`: a succeeded (or rolled back) step moves the agent's recorded runtime
    version (upgrades do; a converge changes configuration, not the runtime).
    `backs_up`: the box takes a state backup before it changes (the new runtime may migrate
    the state beyond what the old one opens).
    """

    name: str
    work: WorkFactory
    undo: WorkFactory
    sets_runtime: bool = False
    backs_up: bool = False


_REGISTRY: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Called once by each kind's module at import."""
    _REGISTRY[kind.name] = kind
    return kind


def registered() -> dict[str, JobKind]:
    """The kinds imported so far (a `Run` takes a copy when it is built)."""
    return dict(_REGISTRY)


def kind_of(kinds: dict[str, JobKind], name: str) -> JobKind:
    found = kinds.get(name)
    if found is None:
        known = ", ".join(sorted(kinds)) or "none"
        raise StateError(f"rollout kind {name!r} is not registered here (known: {known})")
    return found


def snapshot_first(run: Run, job: Job, step: RolloutStep, name: str) -> None:
    """With --snapshot: a Hetzner snapshot before the box is touched (once, even on resume)."""
    if not job.policy.snapshot or step.snapshot_id:
        return
    labels = snapshot_labels(name, f"pre-{job.kind}") | {"rollout": str(job.rollout_id)}
    try:
        image = make_engine(run.settings, "hcloud").snapshot(
            name, f"fatctl: {name} before {job.kind} rollout {job.rollout_id}", labels
        )
    except FatctlError as exc:
        raise FatctlError(f"snapshot before {job.kind} failed: {exc.one_line()}") from None
    assert step.id is not None
    rec.update_step(run.engine, step.id, snapshot_id=image)
    run.event("host.snapshot", agent=name, image=image)


def backup_first(run: Run, pool: Pool, job: Job, step: RolloutStep, name: str) -> None:
    """A state backup before the box is touched (once, even on resume): the box's
    `fat-backup`, the gateway left running (OpenClaw's backup reads SQLite through its online
    backup API). A box without R2 storage has no state backups at all and goes on as before;
    an agent without a backup key (provisioned before they existed) fails the step before
    anything changed, naming `fatctl backup keys` (or --no-backup); so does a failed backup."""
    if not job.policy.backup or step.backup_key or not kind_of(run.kinds, job.kind).backs_up:
        return
    if not _backs_up(run, name):
        return
    try:
        taken = take_backup(run.engine, pool, run.targets[name], kind=f"pre-{job.kind}",
                            actor=run.actor)  # fmt: skip
    except FatctlError as exc:
        raise FatctlError(f"backup before {job.kind} failed: {exc.one_line()}",
                          hint="--no-backup goes on without one") from None  # fmt: skip
    assert step.id is not None
    rec.update_step(run.engine, step.id, backup_key=taken.object_key)
    step.backup_key = taken.object_key  # the rollback of this same run reads it from here
    run.event("host.backup", agent=name, backup=taken.name)


def _backs_up(run: Run, name: str) -> bool:
    """The box has R2 storage, so `fat-backup` (rendered with the agent's recipient); one
    without a recipient is refused rather than upgraded without the backup asked for."""
    if not run.settings.r2_endpoint:
        return False
    try:
        require_backup_key(run.engine, name)
    except FatctlError as exc:
        raise FatctlError(exc.one_line(), hint="--no-backup goes on without one") from None
    return True
