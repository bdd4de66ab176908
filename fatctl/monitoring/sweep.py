"""One sweep of the fleet, as `fatctl serve` runs it on a schedule (every 5 minutes).

Every agent whose box is meant to be running gets one HTTPS `GET /readyz` (`probe.sweep`,
bounded concurrency, a deadline per box). Only the boxes that fail it are asked for
`fat-health --json` over SSH (`services.fleet.status.check_boxes`, a bounded fan-out, the same
path `fatctl status` takes), so a sweep of thousands of boxes opens SSH sessions to the few that
need them. The results go to `probe_results` in one transaction (`store.write_sweep`), pruned
to the newest few per agent.

A box fatctl has seen no backup of for `BACKUP_LOOK_AFTER` is also asked, at most
`BACKUP_LOOKS` of them a sweep: the boxes back up on their own timer, and only fat-health
says when they last did (its `backup` object). What it says goes to `backups`, so backup age
(`fatctl_backup_last_timestamp_seconds`, the BackupStale alert) counts those runs, and a
fleet whose boxes back up by themselves does not page. A box backing up fine is asked about
once a day; a healthy box with a fresh backup is never asked.

Rows: a box that answered ready is `via=https, ok`; one that did not is `via=ssh, ok=false`
with the HTTPS status and latency and, as `error`, the HTTPS reason and fat-health's verdict
(a healthy fat-health behind a failing /readyz is still down for the customer: DNS, TLS or
Caddy). A box asked only about its backup keeps its HTTPS row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fatctl.monitoring.metrics import BoxFigures
from fatctl.monitoring.probe import ProbeResult, run_sweep
from fatctl.monitoring.store import KEEP_PER_AGENT, ProbeRow, SeenBackup, utc, write_sweep
from fatctl.monitoring.targets import RUNNING_STATES, configured_targets, configured_trust
from fatctl.services.fleet.status import SSH_PARALLEL, BoxHealth, check_boxes

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.secrets import KeyRing

PROBE_CONCURRENCY = 200
PROBE_TIMEOUT_S = 5.0
# A box backing up daily reports a new backup within a day; past 20 h without one known, ask.
BACKUP_LOOK_AFTER = timedelta(hours=20)
BACKUP_LOOKS = 50  # boxes asked about their backup per sweep, oldest known backup first


@dataclass(frozen=True)
class SweepSummary:
    probed: int  # boxes probed over HTTPS
    ok: int  # answered ready
    failed: int  # did not; each was asked over SSH
    ssh_healthy: int  # of those, fat-health said healthy (the fault is DNS, TLS or Caddy)
    backup_looks: int  # healthy boxes asked over SSH only for their last backup
    backups_seen: int  # backups the boxes reported, recorded in `backups`
    seconds: float  # wall time of the whole sweep
    # Ready agents whose probe failed after a passing one (or none), and agents passing again
    # after a failure: the transitions the platform hears of (agent.degraded, agent.recovered).
    degraded: tuple[str, ...] = ()
    recovered: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Box:
    pk: int
    name: str
    ipv4: str
    ipv6: str
    newest_backup: datetime | None  # newest known in `backups`
    backups: bool  # backups are configured (the agent has an age recipient)


# Agents whose box is meant to be running, with their newest known backup (NULL: none).
_RUNNING_BOXES = """
SELECT a.id, a.name, a.ipv4, a.ipv6, a.backup_recipient, MAX(b.created_at) AS newest
FROM agents a LEFT JOIN backups b ON b.agent_pk = a.id
WHERE a.state IN :states AND a.server_id <> ''
GROUP BY a.id, a.name, a.ipv4, a.ipv6, a.backup_recipient ORDER BY a.name
"""


# Each agent's newest stored probe before this sweep writes its own, and the agent's state.
_LAST_PROBES = """
SELECT a.name, a.state, p.ok FROM probe_results p JOIN agents a ON a.id = p.agent_pk
WHERE p.id IN (SELECT MAX(id) FROM probe_results WHERE at < :before GROUP BY agent_pk)
"""
_STATES = "SELECT name, state FROM agents WHERE state IN :states"


def last_probes(db: Engine, before: datetime) -> tuple[dict[str, bool], dict[str, str]]:
    """(agent -> whether its newest probe stored before `before` passed, agent -> state) of
    running agents. A sweep passes its own instant: replayed after its rows were committed
    (a worker killed before DBOS recorded the step), it must not read them as the previous
    sweep's, or its degraded/recovered transitions come out empty and are never sent."""
    from sqlalchemy import DateTime, bindparam, text

    states_query = text(_STATES).bindparams(bindparam("states", expanding=True))
    # Typed as the column is, so SQLite compares the same text form the rows were written in.
    last_query = text(_LAST_PROBES).bindparams(bindparam("before", type_=DateTime(timezone=True)))
    with db.connect() as conn:
        found_last = conn.execute(last_query, {"before": utc(before)}).all()
        last = {name: bool(ok) for name, _, ok in found_last}
        found = conn.execute(states_query, {"states": list(RUNNING_STATES)}).all()
    return last, {str(name): str(state) for name, state in found}


def transitions(
    results: Sequence[ProbeResult], last: Mapping[str, bool], states: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(degraded, recovered): a `ready` agent failing after a pass or no probe at all (an
    upgrading box is expected to fail for a moment), and any agent passing after a failure."""
    degraded = [r.agent for r in results if not r.ok and last.get(r.agent, True)
                and states.get(r.agent) == "ready"]  # fmt: skip
    recovered = [r.agent for r in results if r.ok and last.get(r.agent) is False]
    return tuple(sorted(degraded)), tuple(sorted(recovered))


def running_boxes(db: Engine) -> list[Box]:
    """Agents whose box is meant to be running and answering, with their newest known backup."""
    from sqlalchemy import bindparam, text

    query = text(_RUNNING_BOXES).bindparams(bindparam("states", expanding=True))
    with db.connect() as conn:
        found = conn.execute(query, {"states": list(RUNNING_STATES)}).all()
    return [
        Box(pk, name, ipv4, ipv6, _aware(newest), bool(recipient))
        for pk, name, ipv4, ipv6, recipient, newest in found
    ]


def _aware(value: datetime | str | None) -> datetime | None:
    """An aware datetime (SQLite hands back a naive ISO string for an aggregate)."""
    if value is None:
        return None
    return utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def backup_looks(boxes: Sequence[Box], now: datetime, skip: set[str], limit: int) -> list[str]:
    """Boxes with backups configured and none known for `BACKUP_LOOK_AFTER` (never seen
    first, then the oldest), not in `skip` (already asked this sweep), at most `limit`."""
    due = [b for b in boxes if b.backups and b.name not in skip
           and (b.newest_backup is None or now - b.newest_backup >= BACKUP_LOOK_AFTER)]  # fmt: skip
    due.sort(key=lambda b: (b.newest_backup is not None, b.newest_backup or now, b.name))
    return [b.name for b in due[:limit]]


def reported_backup(box: Box, health: BoxHealth) -> SeenBackup | None:
    """The last successful backup fat-health reported, when it is newer than fatctl knew."""
    report = health.report or {}
    backup = report.get("backup")
    if not isinstance(backup, Mapping) or backup.get("ok") is False:
        return None
    key, at = backup.get("object"), backup.get("at")
    if not key or not isinstance(at, str):
        return None
    try:
        when = _aware(datetime.fromisoformat(at.replace("Z", "+00:00")))
    except ValueError:
        return None
    if when is None or (box.newest_backup is not None and when <= box.newest_backup):
        return None
    size = backup.get("size_bytes")
    return SeenBackup(box.pk, str(key)[:300], when, int(size) if isinstance(size, int) else 0)


def probe_row(box: Box, result: ProbeResult, health: BoxHealth | None, now: datetime) -> ProbeRow:
    latency_ms = round(result.latency_s * 1000.0, 3)
    # What fat-health said of the box's resources (issue 20), when it was asked: a failing box,
    # or one asked for its backup; /metrics shows it per agent for those boxes only.
    figures = BoxFigures.from_report(health.report) if health is not None else None
    if result.ok:
        return ProbeRow(box.pk, now, True, "https", result.status, latency_ms, None, figures)
    said = f"; fat-health: {health.verdict}" if health is not None else ""
    via = "ssh" if health is not None else "https"
    return ProbeRow(box.pk, now, False, via, result.status, latency_ms,
                    f"{result.reason}{said}", figures)  # fmt: skip


def sweep_fleet(
    db: Engine,
    ring: KeyRing,
    settings: Settings,
    *,
    now: datetime,
    concurrency: int = PROBE_CONCURRENCY,
    timeout_s: float = PROBE_TIMEOUT_S,
    ssh_parallel: int = SSH_PARALLEL,
    keep: int = KEEP_PER_AGENT,
) -> SweepSummary:
    """Probe the fleet, escalate the failures to SSH, store what was seen; the counts.

    `now` stamps every row (a scheduled run passes its firing time, so a replay writes the
    same instant). `ring` is unused today: SSH needs no secret of fatctl's; it stays so the
    schedule's call does not change when a probe needs one."""
    del ring
    started = time.perf_counter()
    boxes = running_boxes(db)
    if not boxes:
        return SweepSummary(0, 0, 0, 0, 0, 0, time.perf_counter() - started)
    rows: list[Mapping[str, Any]] = [{"name": b.name, "ipv4": b.ipv4, "ipv6": b.ipv6}
                                     for b in boxes]  # fmt: skip
    targets = configured_targets(rows, settings)
    results = run_sweep(
        targets, concurrency=concurrency, timeout_s=timeout_s, verify=configured_trust(settings)
    )
    by_name = {b.name: b for b in boxes}
    degraded, recovered = transitions(results, *last_probes(db, now))
    failing = [r.agent for r in results if not r.ok]
    looks = backup_looks(boxes, now, set(failing), BACKUP_LOOKS)
    asked = check_boxes(db, settings, [*failing, *looks], parallel=ssh_parallel)
    seen = [
        found
        for name, health in asked.items()
        if (found := reported_backup(by_name[name], health)) is not None
    ]
    write_sweep(
        db,
        [probe_row(by_name[r.agent], r, asked.get(r.agent), now) for r in results],
        seen,
        keep=keep,
    )  # fmt: skip
    return SweepSummary(
        probed=len(results),
        ok=len(results) - len(failing),
        failed=len(failing),
        ssh_healthy=sum(1 for n in failing if asked[n].healthy),
        backup_looks=len(looks),
        backups_seen=len(seen),
        seconds=round(time.perf_counter() - started, 3),
        degraded=degraded,
        recovered=recovered,
    )
