"""Rollouts started through the API, as DBOS workflows over the CLI's rollout engine.

The API records the rollout (`rollout.records.create`: the row and one pending step per host)
before it answers, so the platform gets the rollout's id at once; the workflow then drives it
with the engine's own `resume` (`rollout-<id>`, on the `agents` queue, partitioned by the
rollout). It is one step, for the reason provision is: the engine keeps its SSH pool and
targets in memory between hosts. When a process dies mid-rollout, DBOS recovers the workflow
and the step runs `resume` again, which skips the finished hosts and re-verifies half-done
ones by reading each box: no host is upgraded twice.

An abort is a workflow of its own (`rollout-<id>-abort`): it cancels the drive (a drive still
queued never starts; one in the middle of its step stops at its end, as DBOS cannot stop a step)
and runs the engine's `abort`, after durable pauses while the drive still holds the lease.

Either end sends `rollout.finished` with the state, the reason and the hosts counted by phase:
a completed or halted drive, and an abort (so a rollout aborted after it completed reports
twice, each time with what was true then).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from fatctl.domain import RolloutState
from fatctl.errors import LeaseHeld
from fatctl.service.context import AGENTS_QUEUE, current
from fatctl.service.webhooks.events import ROLLOUT_FINISHED, emit_in_workflow
from fatctl.services.common.layouts import box_layout, files_layout
from fatctl.services.common.leases import ROLLOUT_TTL_S
from fatctl.services.converge.job import CONVERGE
from fatctl.services.rollout import engine
from fatctl.services.rollout import records as rec
from fatctl.services.rollout.upgrade import UPGRADE

if TYPE_CHECKING:
    from fatctl.state.models import RolloutStep

ROLLOUT_WORKFLOW = "rollout_wf"
ROLLOUT_ABORT_WORKFLOW = "rollout_abort_wf"
# The drive holds the rollout's lease until its step ends; the abort waits for it, as long
# as the lease could be held (ROLLOUT_TTL_S, 6 h).
ABORT_PAUSE_S = 30.0
ABORT_WAITS = int(ROLLOUT_TTL_S / ABORT_PAUSE_S)

log = logging.getLogger(__name__)


def drive_id(rollout_id: int) -> str:
    return f"rollout-{rollout_id}"


def abort_id(rollout_id: int, attempt: int = 1) -> str:
    """The rollout's `attempt`-th abort workflow (the first keeps the id it always had)."""
    return f"rollout-{rollout_id}-abort" + (f"-{attempt}" if attempt > 1 else "")


# An abort workflow that ended so has stopped for good: a new abort needs a new id, as DBOS
# only attaches a reused id to the finished workflow (nothing would run).
ABORT_FAILED = ("ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


def abort_ids(rollout_id: int) -> list[str]:
    """The rollout's abort workflows so far, oldest first."""
    found: list[str] = []
    while DBOS.get_workflow_status(wfid := abort_id(rollout_id, len(found) + 1)) is not None:
        found.append(wfid)
    return found


def _progress(kind: str, **fields: Any) -> None:
    """The engine's progress events go to the server's log (the API reads the records)."""
    log.info("%s %s", kind, {k: v for k, v in fields.items() if k != "notes"})


def _run(actor: str) -> engine.Run:
    rt = current()
    run = engine.Run(rt.db, rt.settings, box_layout(rt.settings), actor, _progress)
    # Every kind a recorded rollout may have, as the CLI's `rollout resume` has.
    run.kinds = {kind.name: kind for kind in (UPGRADE, CONVERGE)}
    run.files = files_layout(rt.settings)
    return run


def phase_counts(steps: Sequence[tuple[RolloutStep, str]]) -> dict[str, int]:
    """Hosts by the phase of their step, by phase name."""
    return dict(sorted(Counter(str(step.phase) for step, _ in steps).items()))


def summary(rollout_id: int) -> dict[str, Any]:
    """The rollout's state, reason and hosts by phase, as the event reports them."""
    rollout, steps = rec.load(current().db, rollout_id)
    return {
        "rollout": rollout_id,
        "kind": rollout.kind,
        "target": rollout.target,
        "state": rollout.state,
        "reason": rollout.reason,
        "hosts": len(steps),
        "counts": phase_counts(steps),
    }


def _lease_held(exc: BaseException) -> bool:
    return isinstance(exc, LeaseHeld)


def _finished(result: dict[str, Any]) -> dict[str, Any]:
    """Tell the platform how the rollout ended (an event per workflow, id from the run)."""
    emit_in_workflow(ROLLOUT_FINISHED, None, result)
    return result


@DBOS.step(name="rollout_run", retries_allowed=True, max_attempts=4, interval_seconds=5.0,
           should_retry=_lease_held)  # fmt: skip
def _drive_step(rollout_id: int, actor: str) -> dict[str, Any]:
    rollout, _ = rec.load(current().db, rollout_id)
    if rollout.state == RolloutState.RUNNING:  # a replay after the end has nothing to drive
        engine.resume(_run(actor), rollout_id)
    return summary(rollout_id)


@DBOS.workflow(name=ROLLOUT_WORKFLOW)
def rollout_workflow(rollout_id: int, actor: str) -> dict[str, Any]:
    return _finished(_drive_step(rollout_id, actor))


@DBOS.step(name="rollout_abort_run")
def _abort_step(rollout_id: int, actor: str) -> dict[str, Any] | None:
    """The engine's abort, or None while the drive still holds the rollout's lease."""
    try:
        engine.abort(_run(actor), rollout_id)
    except LeaseHeld:
        return None
    return summary(rollout_id)


@DBOS.workflow(name=ROLLOUT_ABORT_WORKFLOW)
def abort_workflow(rollout_id: int, actor: str) -> dict[str, Any]:
    # A cancelled drive stops only at the end of its step (a whole wave set): wait for its
    # lease with durable sleeps, so a restart meanwhile keeps waiting where it was.
    for _ in range(ABORT_WAITS):
        result = _abort_step(rollout_id, actor)
        if result is not None:
            return _finished(result)
        DBOS.sleep(ABORT_PAUSE_S)
    raise LeaseHeld(f"rollout {rollout_id}'s drive still holds its lease: abort it again later")


def _enqueue(wfid: str, workflow: Any, rollout_id: int, actor: str) -> str:
    # Each workflow its own partition: an abort must not queue behind the drive it stops.
    with SetWorkflowID(wfid), SetEnqueueOptions(queue_partition_key=wfid):
        DBOS.enqueue_workflow(AGENTS_QUEUE, workflow, rollout_id, actor)
    return wfid


def start_drive(rollout_id: int, actor: str) -> str:
    """Enqueue (or find) the recorded rollout's drive; returns its workflow id at once."""
    return _enqueue(drive_id(rollout_id), rollout_workflow, rollout_id, actor)


def start_abort(rollout_id: int, actor: str) -> str:
    """Cancel the drive, if any, and enqueue (or find) the abort: the latest one while it is
    queued, running or done; a new one after it failed or was cancelled (its error says
    "abort it again later", which must then start something)."""
    drive = drive_id(rollout_id)
    if DBOS.get_workflow_status(drive) is not None:
        DBOS.cancel_workflow(drive)
    earlier = abort_ids(rollout_id)
    attempt = len(earlier) or 1
    if earlier:
        last = DBOS.get_workflow_status(earlier[-1])
        if last is not None and last.status in ABORT_FAILED:
            attempt += 1
    return _enqueue(abort_id(rollout_id, attempt), abort_workflow, rollout_id, actor)
