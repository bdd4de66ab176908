"""The repair policy, pure: what to do about one box now, from what fatctl has recorded.

`decide(probes, attempts, box, policy, now)` answers `Leave` (with why), `Repair(rung)` or
`Page` (with why). The rules, in order:

1. Left alone: an agent not `ready`/`degraded` (a suspended or archived one has no box, an
   upgrading one is a rollout's), one under a hold (an operator's, or the page that ended an
   earlier ladder: only `fatctl repair release` lifts either), one with an unfinished lifecycle
   op or a rollout step, a plan whose ladder is empty, and a repair still running.
2. Healthy enough: fewer than `after_failures` failed sweeps in a row.
3. The incident is the current run of failed sweeps: the rungs started since its first failed
   sweep belong to it, and the next rung is the first one it has not tried. A rung that passed
   its health gate but whose box failed the next sweep again did not repair it, so the ladder
   goes on. After a rung, a failed sweep newer than its end is needed before the next one
   (the gate's verdict is not the customer's).
4. No loops: the ladder exhausted, or `max_per_window` rungs already run within `window`
   (a box that keeps breaking after each repair), pages instead of repairing again.
   An operator's release (a `release` row) starts afresh: rungs before it count for nothing.

A `Page` is recorded as a hold of kind `paged`, so rule 1 leaves the box alone afterwards:
the policy never repairs a paged box again on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fatctl.domain import AgentState, ServicePlan
from fatctl.errors import BadInput

if TYPE_CHECKING:
    from fatctl.config import Settings

RESTART, REBOOT, REBUILD = "restart", "reboot", "rebuild"
RUNGS = (RESTART, REBOOT, REBUILD)
PAGE = "page"
RELEASE = "release"  # an operator lifted a hold or page: the ladder starts afresh
# How a rung's row ends; `running` until it does.
RUNNING, OK, FAILED, PAGED, SKIPPED = "running", "ok", "failed", "paged", "skipped"
REPAIRABLE = frozenset({AgentState.READY.value, AgentState.DEGRADED.value})
# A rung whose row says running for longer than this died with its process (a rebuild with
# its backup restore takes well under an hour); it then counts as failed, not as running.
STALE_AFTER = timedelta(hours=2)
OFF = "off"


@dataclass(frozen=True)
class Policy:
    """One plan's ladder. `after_failures`: failed sweeps in a row before the first rung;
    `max_per_window`: rungs a box may need within `window` before it is paged instead."""

    rungs: tuple[str, ...] = RUNGS
    after_failures: int = 2
    max_per_window: int = 5
    window: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        unknown = [r for r in self.rungs if r not in RUNGS]
        if unknown:
            raise BadInput(f"unknown repair rung {unknown[0]!r} (known: {', '.join(RUNGS)})")
        if len(set(self.rungs)) != len(self.rungs):
            raise BadInput("a repair rung may appear only once in a ladder")
        if self.after_failures < 1 or self.max_per_window < 1:
            raise BadInput("repair counts (after_failures, max_per_window) must be >= 1")
        if self.window <= timedelta(0):
            raise BadInput("the repair window must be longer than zero")


@dataclass(frozen=True)
class Probe:
    at: datetime
    ok: bool


@dataclass(frozen=True)
class Attempt:
    rung: str  # one of RUNGS, PAGE or RELEASE
    started_at: datetime
    finished_at: datetime | None
    result: str


@dataclass(frozen=True)
class Box:
    """What the policy needs to know of the agent besides its probes and repairs."""

    name: str
    state: str
    plan: str
    hold: str | None = None  # the hold's kind (operator, paged); None: not held
    open_op: str | None = None  # the unfinished lifecycle op's kind
    in_rollout: bool = False


@dataclass(frozen=True)
class Leave:
    why: str


@dataclass(frozen=True)
class Repair:
    rung: str
    step: int  # 1-based: which rung of the ladder


@dataclass(frozen=True)
class Page:
    why: str


Action = Leave | Repair | Page


@dataclass(frozen=True)
class Policies:
    """The ladder of each plan."""

    by_plan: Mapping[str, Policy] = field(default_factory=dict)

    def of(self, plan: str) -> Policy:
        return self.by_plan.get(plan) or Policy(rungs=())


def decide(
    probes: Sequence[Probe], attempts: Sequence[Attempt], box: Box, policy: Policy, now: datetime
) -> Action:
    """The one action for `box` now (probes and attempts in any order)."""
    if (why := _left_alone(box, policy)) is not None:
        return Leave(why)
    ordered = sorted(probes, key=lambda p: p.at)
    failing = failing_run(ordered)
    if len(failing) < policy.after_failures:
        need = policy.after_failures
        return Leave(f"{len(failing)} failed sweep(s) in a row, repair after {need}")
    tried = sorted(attempts, key=lambda a: a.started_at)
    if any(_running(a, now) for a in tried):
        return Leave("a repair is running")
    # An operator's release starts afresh: what ran before it counts for nothing.
    since = max([failing[0].at, *(a.started_at for a in tried if a.rung == RELEASE)])
    incident = [a for a in tried if a.rung in RUNGS and a.started_at >= since]
    if incident:
        ended = incident[-1].finished_at or incident[-1].started_at
        if failing[-1].at <= ended:
            return Leave(f"waiting for a sweep after the {incident[-1].rung}")
    if len(incident) >= len(policy.rungs):
        return Page(f"repair ladder exhausted ({', '.join(a.rung for a in incident)})")
    released = max((a.started_at for a in tried if a.rung == RELEASE), default=None)
    recent = [a for a in tried if a.rung in RUNGS and now - a.started_at < policy.window
              and (released is None or a.started_at >= released)]  # fmt: skip
    if len(recent) >= policy.max_per_window:
        hours = policy.window.total_seconds() / 3600
        return Page(f"{len(recent)} repairs within {hours:g} h: not repairing in a loop")
    step = len(incident)
    return Repair(policy.rungs[step], step + 1)


def _left_alone(box: Box, policy: Policy) -> str | None:
    if box.state not in REPAIRABLE:
        return f"agent is {box.state}"
    if box.hold is not None:
        if box.hold == PAGED:
            return "paged: `fatctl repair release` first"
        return "held by an operator"
    if box.open_op is not None:
        return f"unfinished {box.open_op} op"
    if box.in_rollout:
        return "in a rollout"
    if not policy.rungs:
        return f"no repair ladder for plan {box.plan}"
    return None


def failing_run(ordered: Sequence[Probe]) -> list[Probe]:
    """The newest consecutive failed probes, oldest first."""
    run: list[Probe] = []
    for probe in reversed(ordered):
        if probe.ok:
            break
        run.append(probe)
    return run[::-1]


def _running(attempt: Attempt, now: datetime) -> bool:
    return attempt.result == RUNNING and now - attempt.started_at < STALE_AFTER


def parse_rungs(text: str, what: str) -> tuple[str, ...]:
    """`restart,reboot,rebuild` (or `off`) as a ladder; a bad one names its setting."""
    raw = text.strip()
    if raw.lower() in (OFF, ""):
        return ()
    rungs = tuple(r.strip().lower() for r in raw.split(",") if r.strip())
    unknown = [r for r in rungs if r not in RUNGS]
    if unknown:
        raise BadInput(f"{what}: unknown repair rung {unknown[0]!r} (known: {', '.join(RUNGS)})")
    return rungs


# The longest repair window a setting may ask for (ten years): beyond it `timedelta` overflows.
MAX_WINDOW_H = 10 * 365 * 24


def _number(text: str, what: str, kind: type[int] | type[float]) -> float:
    """A finite number (float() takes 'nan' and 'inf', and '1e999' is inf)."""
    try:
        value = kind(text.strip())
    except (ValueError, OverflowError):
        raise BadInput(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadInput(f"{what}: {text!r} must be a finite number")
    return value


def gate_seconds(settings: Settings) -> float:
    """FATCTL_REPAIR_GATE_S: a positive number of seconds (a bad one names its setting)."""
    gate = _number(settings.repair_gate_s, "FATCTL_REPAIR_GATE_S", float)
    if gate <= 0:
        raise BadInput(f"FATCTL_REPAIR_GATE_S: {settings.repair_gate_s!r} must be above 0")
    return gate


def policies_from(settings: Settings) -> Policies:
    """Each plan's ladder from the FATCTL_REPAIR_* settings (bad values refused, naming them)."""
    after = int(_number(settings.repair_after_failures, "FATCTL_REPAIR_AFTER_FAILURES", int))
    most = int(_number(settings.repair_max_per_window, "FATCTL_REPAIR_MAX_PER_WINDOW", int))
    hours = _number(settings.repair_window_h, "FATCTL_REPAIR_WINDOW_H", float)
    if not 0 < hours <= MAX_WINDOW_H:
        raise BadInput(f"FATCTL_REPAIR_WINDOW_H: {settings.repair_window_h!r} must be above 0 "
                       f"and at most {MAX_WINDOW_H} (ten years)")  # fmt: skip
    gate_seconds(settings)  # read by the rungs; checked here so `fatctl serve` refuses it at start
    rungs_of = {ServicePlan.MANAGED: settings.repair_rungs_managed,
                ServicePlan.BYOK: settings.repair_rungs_byok}  # fmt: skip
    by_plan = {}
    for plan in ServicePlan:
        env = f"FATCTL_REPAIR_RUNGS_{plan.value.upper()}"
        rungs = parse_rungs(rungs_of[plan], env)
        by_plan[plan.value] = Policy(rungs, after, most, timedelta(hours=hours))
    return Policies(by_plan)
