"""`fatctl serve`'s recurring work, as DBOS scheduled workflows.

Four schedules, each a cron of the settings (`FATCTL_SCHEDULE_<NAME>`, `off` disables one):
`r2-rotate` rotates the boxes' R2 credentials before they expire (they live 7 days; every 6 h
with a 2-day window, a day of outage is harmless), `reconcile` runs `reconcile --fix` (the safe
findings only), `health-sweep` probes the fleet (`monitoring.sweep`) and enqueues the repairs
the repair policy then chooses (`service.repair_wf`), then tells the operator's channels of
alerts that started or ended (`monitoring.notify`, when any is configured), `backup-verify`
opens every running agent's newest backup. Each runs on its own queue `sched-<name>` with a
global concurrency of 1, so several servers sharing the database never run one schedule twice
at once; DBOS dedupes the firings themselves by id (`sched-<name>-<time>`).

One clock per run: the first step checkpoints `now = max(scheduled_at, the service's clock)`,
and everything the run judges (expiry, audit stamps) is measured from it, also on replay; a
backfilled future firing is how a test injects time.

Missed firings: DBOS's `automatic_backfill` would enqueue every one of them. fatctl wants one
catch-up run: at start, a schedule whose last firing is older than its previous cron time gets
one run with the id `catchup-<name>-<previous cron time>`, so servers starting together enqueue
it once. A schedule that never fired (a new database) has missed nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from croniter import croniter
from dbos import DBOS, ScheduleInput, SetWorkflowID

from cloud_init.layout import R2_ENV
from fatctl.domain import AgentState
from fatctl.errors import BadInput, FatctlError
from fatctl.sensitive import redact
from fatctl.service.context import current
from fatctl.service.repair_wf import enqueue_repairs
from fatctl.service.webhooks.events import AGENT_DEGRADED, AGENT_RECOVERED, emit_in_workflow
from fatctl.services.backup.on_box import verify_backup
from fatctl.services.common.leases import REPAIR_TTL_S, agent_lease
from fatctl.services.common.targets import select_targets
from fatctl.services.reconcile.run import Options, reconcile
from fatctl.state.db import session_scope
from fatctl.state.leases import free_ones

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.remote.target import Target

# Boxes that run: the only ones whose credentials or backups a schedule can reach.
RUNNING_STATES = frozenset({AgentState.READY, AgentState.DEGRADED, AgentState.UPGRADING})
FAN_OUT = 8  # boxes worked on at once by one run (SSH sessions, not cloud calls)
OFF = "off"


@dataclass(frozen=True)
class Schedule:
    name: str
    setting: str  # the Settings attribute holding its cron ("" = `default`)
    default: str  # six fields, seconds first, UTC

    @property
    def queue(self) -> str:
        return f"sched-{self.name}"

    @property
    def actor(self) -> str:
        return f"schedule:{self.name}"

    @property
    def workflow(self) -> str:
        return "sched_" + self.name.replace("-", "_")


SCHEDULES = (
    Schedule("r2-rotate", "schedule_r2_rotate", "0 0 */6 * * *"),
    Schedule("reconcile", "schedule_reconcile", "0 20 * * * *"),
    Schedule("health-sweep", "schedule_health_sweep", "0 */5 * * * *"),
    Schedule("backup-verify", "schedule_backup_verify", "0 40 3 * * *"),
)
BY_NAME = {s.name: s for s in SCHEDULES}


def configured(settings: Settings) -> dict[str, str | None]:
    """Each schedule's cron from the settings, None when `off`; a bad cron is refused."""
    crons: dict[str, str | None] = {}
    for sched in SCHEDULES:
        raw = str(getattr(settings, sched.setting) or "").strip() or sched.default
        if raw.lower() == OFF:
            crons[sched.name] = None
        elif croniter.is_valid(raw, second_at_beginning=True):
            crons[sched.name] = raw
        else:
            env = "FATCTL_" + sched.setting.upper()
            raise BadInput(f"{env}: {raw!r} is not a cron expression (5 or 6 fields, or off)")
    return crons


def previous_fire(cron: str, now: datetime) -> datetime:
    """The last time `cron` fired at or before `now` (UTC)."""
    start = now.astimezone(UTC) + timedelta(seconds=1)  # get_prev excludes its start
    return croniter(cron, start, second_at_beginning=True).get_prev(datetime)


def next_fire(cron: str, now: datetime) -> datetime:
    """The next time `cron` fires after `now` (UTC)."""
    it = croniter(cron, now.astimezone(UTC), second_at_beginning=True)
    return it.get_next(datetime)


def missed(schedules: Iterable[Mapping[str, Any]], now: datetime) -> list[tuple[str, datetime]]:
    """(name, previous cron time) of each schedule whose last firing is older than that time."""
    due = []
    for row in schedules:
        last = row.get("last_fired_at")
        if not last or row.get("status", "ACTIVE") != "ACTIVE":
            continue
        prev = previous_fire(str(row["schedule"]), now)
        fired = datetime.fromisoformat(str(last))
        if (fired if fired.tzinfo else fired.replace(tzinfo=UTC)) < prev:
            due.append((str(row["schedule_name"]), prev))
    return due


def catchup_id(name: str, prev: datetime) -> str:
    return f"catchup-{name}-{prev.isoformat()}"


# --- the runs -----------------------------------------------------------------------------


@DBOS.step(name="sched_instant")
def _instant(scheduled_at: str) -> str:
    """The run's one instant, checkpointed: a replay judges against the same `now`."""
    return max(datetime.fromisoformat(scheduled_at), current().clock()).isoformat()


@DBOS.step(name="sched_audit")
def _audit(name: str, now: str, result: str, detail: dict[str, Any]) -> None:
    from fatctl.state import repo

    rt = current()
    with session_scope(rt.db) as session:
        repo.audit(session, actor=BY_NAME[name].actor, action="schedule.run", target=name,
                   result=result, detail=detail, at=datetime.fromisoformat(now))  # fmt: skip


def _run(name: str, scheduled_at: datetime, body: Callable[[str], dict[str, Any]]) -> dict:
    """Fix the instant, run the body, audit the outcome (a failure too, then re-raise)."""
    now = _instant(scheduled_at.astimezone(UTC).isoformat())
    base = {"scheduled_at": scheduled_at.astimezone(UTC).isoformat(), "now": now,
            "workflow_id": DBOS.workflow_id}  # fmt: skip
    try:
        counts = body(now)
    except Exception as exc:
        _audit(name, now, "failed", {**base, "error": _one_line(exc)})
        raise
    result = "failed" if counts.get("failed") else "ok"
    _audit(name, now, result, {**base, **counts})
    return {"result": result, "now": now, "scheduled_at": base["scheduled_at"], **counts}


def _one_line(exc: BaseException) -> str:

    text = exc.one_line() if isinstance(exc, FatctlError) else f"{type(exc).__name__}: {exc}"
    return redact(text.replace("\n", " "))[:300]


def _running_targets(names: Iterable[str] | None = None) -> list[Target]:
    """The boxes that run: every agent's, or those of `names`."""

    rt = current()
    chosen = None if names is None else list(names)
    if chosen == []:
        return []
    found = (select_targets(rt.db, rt.settings, all_agents=True) if chosen is None
             else select_targets(rt.db, rt.settings, names=chosen))  # fmt: skip
    running = _states(t.name for t in found)
    return [t for t in found if running.get(t.name) in RUNNING_STATES]


def _states(names: Iterable[str]) -> dict[str, str]:
    from sqlmodel import select

    from fatctl.state.models import Agent

    with session_scope(current().db) as session:
        rows = session.exec(select(Agent.name, Agent.state)
                            .where(Agent.name.in_(list(names)))).all()  # type: ignore[attr-defined]  # fmt: skip
        return {name: str(state) for name, state in rows}


def _fan_out(
    db: Engine, targets: list[Target], one: Callable[..., Any]
) -> tuple[list[Any], list[str]]:
    """`one(pool, target)` on each box whose agent lease is free, FAN_OUT at a time; returns
    the results and the names of the busy boxes (a provision, rebuild or destroy holds them:
    the next run takes them up). Each lease is taken when its box's turn comes and released
    as soon as that box is done: a run over the whole fleet (backup-verify, hours at 1,000
    boxes) must not keep every agent from the API's destroy and the CLI meanwhile."""
    from fatctl.remote.runner import Pool

    if not targets:
        return [], []

    def leased(pool: Pool, target: Target) -> tuple[bool, Any]:
        with free_ones(db, [agent_lease(target.name)], ttl_s=REPAIR_TTL_S) as taken:
            return (True, one(pool, target)) if taken else (False, None)

    with Pool() as pool, ThreadPoolExecutor(max_workers=min(FAN_OUT, len(targets))) as workers:
        outcomes = list(workers.map(lambda t: leased(pool, t), targets))
    busy = sorted(t.name for t, (ran, _) in zip(targets, outcomes, strict=True) if not ran)
    return [result for ran, result in outcomes if ran], busy


@DBOS.step(name="sched_r2_rotate_run")
def _rotate(now_iso: str) -> dict[str, Any]:
    """Rotate the due boxes only: a fresh one is counted as skipped, with no per-box entry."""
    from fatctl.dns.r2_credentials import ROTATE_BEFORE
    from fatctl.services.storage.r2_rotation import planned_rotations, rotate_one

    rt, now = current(), datetime.fromisoformat(now_iso)
    targets = _running_targets()
    plan = planned_rotations(rt.db, targets, now=now, window=ROTATE_BEFORE, force=False)
    due = [t for t, p in zip(targets, plan, strict=True) if p.action == "would rotate"]
    env_path = rt.rotation_delivery.get("env_path", R2_ENV)
    after = rt.rotation_delivery.get("after")
    done, busy = _fan_out(rt.db, due, lambda pool, t: rotate_one(
        rt.db, rt.ring, rt.settings, pool, t, now=now, actor=BY_NAME["r2-rotate"].actor,
        env_path=env_path, after=after))  # fmt: skip
    rotated = sorted(r.agent for r in done if r.action == "rotated")
    failed = sorted(r.agent for r in done if r.action == "failed")
    return {"agents": len(targets), "rotated": len(rotated), "skipped": len(targets) - len(due),
            "busy": len(busy), "failed": len(failed), "failed_agents": failed[:20]}  # fmt: skip


@DBOS.step(name="sched_reconcile_run")
def _reconcile(now_iso: str) -> dict[str, Any]:
    rt = current()
    report = reconcile(rt.db, rt.settings, Options(), fix=True,
                       actor=BY_NAME["reconcile"].actor)  # fmt: skip
    return {"findings": len(report.findings), "fixed": len(report.fixes),
            "not_checked": list(report.not_checked), "failed": 0}  # fmt: skip


@DBOS.step(name="sched_health_sweep_run")
def _sweep(now_iso: str) -> dict[str, Any]:
    # The monitoring package's entry point; imported here as only this step needs it.
    from fatctl.monitoring.sweep import sweep_fleet

    rt = current()
    summary = sweep_fleet(rt.db, rt.ring, rt.settings, now=datetime.fromisoformat(now_iso))
    counts = {k: v for k, v in summary.as_dict().items() if isinstance(v, int)}
    # A box that did not answer is the sweep's finding, not the run's failure.
    counts["down"] = counts.pop("failed", 0)
    moved = {"degraded": list(summary.degraded), "recovered": list(summary.recovered)}
    return {**counts, "failed": 0, **moved}


@DBOS.step(name="sched_notify_run")
def _notify(now_iso: str) -> dict[str, Any]:
    """The operator's own notifications (`monitoring.notify`): the alert rules over what the
    sweep stored, one message per alert start and end per channel; nothing without a channel."""
    from fatctl.monitoring.notify import notify_fleet

    rt = current()
    return notify_fleet(rt.db, rt.settings, now=datetime.fromisoformat(now_iso))


def _sweep_then_repair(now_iso: str) -> dict[str, Any]:
    """The sweep, its transitions told to the platform (agent.degraded, agent.recovered: one
    event per agent and sweep, ids from the run), then one repair workflow per box the repair
    policy chooses (issue 20), enqueued from the schedule's workflow so a replay enqueues the
    same ids."""
    counts = _sweep(now_iso)
    for kind, key in ((AGENT_DEGRADED, "degraded"), (AGENT_RECOVERED, "recovered")):
        names = counts.pop(key)
        for name in names:
            emit_in_workflow(kind, name, {"at": now_iso}, key=name)
        counts[key] = len(names)
    return {**counts, **enqueue_repairs(now_iso), **_notify(now_iso)}


def _agents_with_backups(db: Engine) -> list[str]:
    """Running agents with a known backup: degraded ones too, which most need theirs checked."""
    from sqlmodel import col, select

    from fatctl.state.models import Agent, Backup

    running = sorted(str(state) for state in RUNNING_STATES)
    with session_scope(db) as session:
        rows = session.exec(select(Agent.name).join(Backup, col(Backup.agent_pk) == col(Agent.id))
                            .where(col(Agent.state).in_(running)).distinct()).all()  # fmt: skip
        return sorted(rows)


@DBOS.step(name="sched_backup_verify_run")
def _verify(now_iso: str) -> dict[str, Any]:
    rt = current()
    targets = _running_targets(_agents_with_backups(rt.db))

    def one(pool: Any, target: Target) -> str | None:
        try:
            verify_backup(rt.db, rt.ring, pool, target, actor=BY_NAME["backup-verify"].actor)
        except FatctlError:  # audited by verify_backup itself, with its reason
            return target.name
        return None

    results, busy = _fan_out(rt.db, targets, one)
    failed = sorted(n for n in results if n)
    return {"agents": len(targets), "verified": len(results) - len(failed), "busy": len(busy),
            "failed": len(failed), "failed_agents": failed[:20]}  # fmt: skip


def _declare(name: str, body: Callable[[str], dict[str, Any]]) -> ScheduledRun:
    """The schedule's workflow, as DBOS calls it: `(scheduled_at, context)` (the context is
    unused; DBOS coerces the stored firing time back to a datetime by this annotation)."""

    def scheduled(scheduled_at: datetime, context: Any) -> dict[str, Any]:
        return _run(name, scheduled_at, body)

    scheduled.__name__ = scheduled.__qualname__ = BY_NAME[name].workflow
    return DBOS.workflow(name=BY_NAME[name].workflow)(scheduled)


ScheduledRun = Callable[[datetime, Any], dict[str, Any]]
BODIES = {"r2-rotate": _rotate, "reconcile": _reconcile, "health-sweep": _sweep_then_repair,
          "backup-verify": _verify}  # fmt: skip
# Declared at import, before DBOS.launch() (runtime.running imports this module first).
WORKFLOWS: dict[str, ScheduledRun] = {name: _declare(name, body) for name, body in BODIES.items()}


# --- registration at start ------------------------------------------------------------------


def register(settings: Settings, now: datetime, poll_s: float = 1.0) -> list[str]:
    """After `DBOS.launch()`: declare the queues, apply the enabled schedules (removing the
    disabled ones), then enqueue one catch-up run per schedule that missed its last firing.
    Returns the catch-up workflow ids."""
    crons = configured(settings)
    for name in crons:
        DBOS.register_queue(BY_NAME[name].queue, global_concurrency=1, polling_interval_sec=poll_s)
    enabled = {n: c for n, c in crons.items() if c is not None}
    for name in crons.keys() - enabled.keys():
        DBOS.delete_schedule(name)
    DBOS.apply_schedules([
        ScheduleInput(schedule_name=name, workflow_fn=cast(Any, WORKFLOWS[name]), schedule=cron,
                      automatic_backfill=False, queue_name=BY_NAME[name].queue)
        for name, cron in enabled.items()
    ])  # fmt: skip
    return catch_up(now)


def catch_up(now: datetime) -> list[str]:
    """One run per schedule that missed its previous cron time; deterministic ids make two
    servers doing this at once enqueue it once (DBOS attaches the second to the first)."""
    rows = [dict(s) for s in DBOS.list_schedules() if s["schedule_name"] in BY_NAME]
    started = []
    for name, prev in missed(rows, now):
        wfid = catchup_id(name, prev)
        with SetWorkflowID(wfid):
            DBOS.enqueue_workflow(BY_NAME[name].queue, WORKFLOWS[name], prev, None)
        started.append(wfid)
    return started
