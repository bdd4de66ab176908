"""What a rollout step runs, by the rollout's kind, and the snapshot taken before it.

`upgrade` steps are `rollout_host.HostUpgrade`, `converge` steps `converge_host.HostConverge`;
both get the same health gate (`rollout_gate`). With `RolloutPolicy.snapshot`, the box is
snapshotted through the hcloud engine (the service behind `fatctl box snapshot`) once it is
known to change and before it is touched (a converge that finds a box unchanged takes none),
once per step even across resumes, and the image id is recorded on the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fatctl.domain import RolloutPolicy
from fatctl.errors import FatctlError
from fatctl.services.rollout import records as rec
from fatctl.services.rollout.gate import Gate
from fatctl.services.rollout.upgrade import HostUpgrade

if TYPE_CHECKING:
    from fatctl.remote.runner import Pool
    from fatctl.services.converge.host import HostConverge
    from fatctl.services.rollout.engine import Job, Run
    from fatctl.state.models import RolloutStep


def snapshot_first(run: Run, job: Job, step: RolloutStep, name: str) -> None:
    """With --snapshot: a Hetzner snapshot before the box is touched (once, even on resume)."""
    if not job.policy.snapshot or step.snapshot_id:
        return
    from fatctl.infra import make_engine

    labels = {"managed-by": "fatctl", "agent": name, "kind": f"pre-{job.kind}"}
    labels["rollout"] = str(job.rollout_id)
    try:
        image = make_engine(run.settings, "hcloud").snapshot(
            name, f"fatctl: {name} before {job.kind} rollout {job.rollout_id}", labels
        )
    except FatctlError as exc:
        raise FatctlError(f"snapshot before {job.kind} failed: {exc.one_line()}") from None
    assert step.id is not None
    rec.update_step(run.engine, step.id, snapshot_id=image)
    run.event("host.snapshot", agent=name, image=image)


def _gate(run: Run, pool: Pool, policy: RolloutPolicy) -> Gate:
    from fatctl.remote.commands.upgrade import health

    domain = run.settings.domain if run.https else ""
    return Gate(pool, health(run.layout), policy.health_timeout_s, domain, run.poll_s)


def work_for(
    run: Run, pool: Pool, job: Job, step: RolloutStep, name: str, *, undo: bool = False
) -> HostUpgrade | HostConverge:
    """The per-host work of the rollout's kind; converge re-renders (and checks) the files,
    except to undo, which restores the box's own backup and needs no rendering."""
    if job.kind == "upgrade":
        return HostUpgrade(
            pool,
            run.layout,
            step.to_version or job.target,
            job.policy.health_timeout_s,
            job.policy.keep_versions,
            run.poll_s,
            domain=run.settings.domain if run.https else "",
        )
    from fatctl.services.converge.job import host_worker, undo_worker

    gate = _gate(run, pool, job.policy)
    if undo:
        return undo_worker(run, pool, gate, job)
    return host_worker(run, pool, gate, job, step, name)
