"""Heartbeats of the service processes, and the reaper that finishes a dead one's workflows.

DBOS open source recovers, at launch, only the PENDING workflows of its own executor id (DBOS
Conductor recovers the others; fatctl does not use it). A worker killed for good would leave
its workflows PENDING forever. So each service process beats in `worker_heartbeats` (migration
0013) every `heartbeat_s`, and on each beat looks for rows quieter than `dead_after_s`: it
claims one with a single conditional UPDATE (so of several live workers exactly one wins, on
PostgreSQL and SQLite alike), frees the leases its process held, re-enqueues that executor's
PENDING workflows and deletes the row. The leases first: a lease's holder is `host:pid:nonce`
and on another host nothing can tell it is dead until it expires (up to `MAX_SILENCE_S`), so
the taken-over provision would fail on its own agent's lease; the heartbeat row names the
host and pid, and its silence is the proof of death the lease lacked. A claim goes stale like
a beat does, so a claimant that dies mid-takeover is itself taken over. A takeover is of one
generation (the row's host, pid and start, read by the claim): a process restarting under a
stable id (`serve-<host>`, a slot's `-wN`) waits while a fresh claim on its old row runs, and
the claimant recovers only while the row is still the one it claimed. Re-enqueueing twice
is harmless: DBOS re-enqueues only rows still PENDING under the dead executor's id, and a
dequeued workflow carries its new executor's id.

A process that finds its own row claimed was declared dead while it was still running (a stall
longer than the timeout): its workflows may already run elsewhere, so it must stop at once
(`on_lost`), before its next step: the worker exits and its supervisor starts it afresh.

All times here are the database's (`database_now`), never a host's: liveness compares beats of
different machines.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, insert, or_, select, text, update

from fatctl.clock import Clock, wall_clock
from fatctl.errors import ConfigError
from fatctl.state.models import Lease, WorkerHeartbeat

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from fatctl.config import Settings

log = logging.getLogger("fatctl.service.reaper")
TABLE: Any = WorkerHeartbeat.__table__  # type: ignore[attr-defined]
LEASES: Any = Lease.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Pace:
    """How often a process beats, when it counts as dead, and its budget batch."""

    heartbeat_s: float = 10.0
    dead_after_s: float = 30.0
    budget_batch: int = 5


# Bounds of the worker timings: a beat more often than this busy-loops UPDATEs; a silence
# longer than a day before a takeover leaves a dead worker's workflows stranded for a day.
MIN_HEARTBEAT_S = 0.1
MAX_DEAD_AFTER_S = 86_400.0


def _seconds(raw: str, env: str) -> float:
    """A finite number of seconds (float() takes 'nan', 'inf' and '1e999', which is inf)."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"bad {env}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"bad {env}: {raw!r} must be a finite number of seconds")
    return value


def pace_from(settings: Settings) -> Pace:
    """The FATCTL_WORKER_* settings, checked: a bad one is one line, before anything starts."""
    beat = _seconds(settings.worker_heartbeat_s, "FATCTL_WORKER_HEARTBEAT_S")
    dead = _seconds(settings.worker_dead_after_s, "FATCTL_WORKER_DEAD_AFTER_S")
    raw_batch = settings.worker_budget_batch
    try:
        batch = int(raw_batch)
    except ValueError:
        raise ConfigError(
            f"bad FATCTL_WORKER_BUDGET_BATCH: {raw_batch!r} is not a whole number"
        ) from None
    if beat < MIN_HEARTBEAT_S:
        raise ConfigError(f"FATCTL_WORKER_HEARTBEAT_S ({beat:g}) must be at least "
                          f"{MIN_HEARTBEAT_S:g} s")  # fmt: skip
    if batch < 1:
        raise ConfigError(f"FATCTL_WORKER_BUDGET_BATCH ({batch}) must be at least 1")
    if dead < 2 * beat:
        raise ConfigError(
            f"FATCTL_WORKER_DEAD_AFTER_S ({dead:g}) must be at least twice "
            f"FATCTL_WORKER_HEARTBEAT_S ({beat:g}): a live worker would be taken over"
        )
    if dead > MAX_DEAD_AFTER_S:
        raise ConfigError(f"FATCTL_WORKER_DEAD_AFTER_S ({dead:g}) must be at most "
                          f"{MAX_DEAD_AFTER_S:g} s (a day)")  # fmt: skip
    return Pace(beat, dead, batch)


def database_now(db: Engine) -> datetime:
    """The database server's clock, in UTC. Beats and the cutoffs they are judged by are all
    read from it: workers on hosts whose clocks disagree by more than `dead_after_s -
    heartbeat_s` would otherwise take live ones over (or reap dead ones late). On SQLite, the
    one host's clock: the file is local."""
    with db.connect() as conn:
        if db.dialect.name == "postgresql":
            now: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            return now.astimezone(UTC)
        raw = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.fromisoformat(raw).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Generation:
    """One process's life under an executor id: a restart under the same (stable) id is
    another generation, whose leases and workflows a takeover of the old one must not touch."""

    host: str
    pid: int
    started_at: datetime


def _of(gen: Generation) -> Any:
    return and_(TABLE.c.host == gen.host, TABLE.c.pid == gen.pid,
                TABLE.c.started_at == gen.started_at)  # fmt: skip


def pid_alive(pid: int) -> bool:
    """Whether a process of this host has `pid` (signal 0 only asks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _in_use(row: Any, host: str, pid: int, alive: Callable[[int], bool]) -> bool:
    """Whether the row beats for another live process: fresh, and not a dead predecessor of
    this one on this host (a crash-looping serve, a restarted child, a container's same pid)."""
    if row.taken_by is not None or not row.beats:
        return False
    return bool(row.host != host or (row.pid != pid and alive(row.pid)))


def _judged(cutoff: datetime) -> Any:
    """The row's columns and, compared in the database (SQLite hands datetimes back naive),
    whether it still beats and whether its claim is fresh."""
    return select(TABLE, (TABLE.c.beat_at >= cutoff).label("beats"),
                  and_(TABLE.c.taken_by.is_not(None), TABLE.c.taken_at >= cutoff)
                  .label("claimed"))  # fmt: skip


def register(db: Engine, me: str, clock: Clock, pace: Pace, *,
             sleep: Callable[[float], None] = time.sleep,
             alive: Callable[[int], bool] = pid_alive) -> None:  # fmt: skip
    """This process's row, fresh. A dead predecessor's row is replaced; while another process
    is taking it over (a fresh claim) this waits for the takeover to end, so that the claimant
    never re-enqueues this process's workflows nor frees its leases; another live process
    beating under the id is refused (two processes under one id recover each other's work)."""
    host, pid = socket.gethostname()[:255], os.getpid()
    while True:
        now = clock()
        cutoff = now - timedelta(seconds=pace.dead_after_s)
        with db.begin() as conn:
            row = conn.execute(_judged(cutoff).where(TABLE.c.executor_id == me)).first()
            if row is not None and _in_use(row, host, pid, alive):
                raise ConfigError(
                    f"executor id {me} is in use by {row.host} pid {row.pid} (it beats): "
                    "give this process another --executor-id, or stop that one"
                )
            if row is None or _replaced(conn, row, cutoff):
                conn.execute(insert(TABLE).values(executor_id=me, host=host, pid=pid,
                                                  started_at=now, beat_at=now))  # fmt: skip
                return
        log.warning("executor %s is being taken over: waiting for that to end", me)
        sleep(min(1.0, pace.heartbeat_s))


def _replaced(conn: Connection, row: Any, cutoff: datetime) -> bool:
    """Delete a dead predecessor's row unless a takeover of it is under way (a fresh claim):
    only the generation judged, so a claim that landed since is waited for too."""
    if row.claimed:
        return False
    free = or_(TABLE.c.taken_by.is_(None), TABLE.c.taken_at < cutoff)
    gen = Generation(row.host, row.pid, row.started_at)
    gone = conn.execute(delete(TABLE).where(TABLE.c.executor_id == row.executor_id, _of(gen),
                                            free))  # fmt: skip
    return bool(gone.rowcount == 1)


def beat(db: Engine, me: str, now: datetime) -> bool:
    """Beat; False when the row is gone or claimed: this process was declared dead."""
    with db.begin() as conn:
        mine = and_(TABLE.c.executor_id == me, TABLE.c.taken_by.is_(None))
        done = conn.execute(update(TABLE).where(mine).values(beat_at=now))
    return bool(done.rowcount == 1)


def _quiet(cutoff: datetime) -> Any:
    """A row nobody beats for any more, not claimed by someone still at it."""
    return and_(TABLE.c.beat_at < cutoff,
                or_(TABLE.c.taken_by.is_(None), TABLE.c.taken_at < cutoff))  # fmt: skip


def quiet(db: Engine, me: str, cutoff: datetime) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(select(TABLE.c.executor_id).where(TABLE.c.executor_id != me,
                                                                  _quiet(cutoff)))  # fmt: skip
        return sorted(r[0] for r in rows)


def claim(db: Engine, dead: str, me: str, now: datetime, cutoff: datetime) -> Generation | None:
    """Take over `dead`: one UPDATE whose condition only one claimant can still meet. Returns
    the generation claimed (None: not this claimant's), read under the claim's own lock."""
    with db.begin() as conn:
        done = conn.execute(update(TABLE).where(TABLE.c.executor_id == dead, _quiet(cutoff))
                            .values(taken_by=me, taken_at=now))  # fmt: skip
        if done.rowcount != 1:
            return None
        row = conn.execute(select(TABLE.c.host, TABLE.c.pid, TABLE.c.started_at)
                           .where(TABLE.c.executor_id == dead)).one()  # fmt: skip
    return Generation(row.host, row.pid, row.started_at)


def free_leases(db: Engine, gen: Generation) -> int:
    """Delete the leases held by the claimed generation's process (holder `host:pid:nonce`),
    named by the claim, never read again: a new process under the id holds its own."""
    prefix = f"{gen.host}:{gen.pid}:"
    with db.begin() as conn:
        done = conn.execute(
            delete(LEASES).where(LEASES.c.holder.startswith(prefix, autoescape=True))
        )
    return int(done.rowcount)


def still_claimed(db: Engine, dead: str, me: str, gen: Generation) -> bool:
    """Whether the row is still the claimed generation, claimed by `me` (a claim gone stale
    may have let a new process register under the id: its workflows are its own)."""
    with db.connect() as conn:
        row = conn.execute(select(TABLE.c.executor_id).where(
            TABLE.c.executor_id == dead, TABLE.c.taken_by == me, _of(gen))).first()  # fmt: skip
    return row is not None


def forget(db: Engine, dead: str, me: str, gen: Generation) -> None:
    """The takeover is done: the claimed generation's row goes (not a newer one's)."""
    with db.begin() as conn:
        conn.execute(delete(TABLE).where(TABLE.c.executor_id == dead, TABLE.c.taken_by == me,
                                         _of(gen)))  # fmt: skip


def sweep(
    db: Engine, me: str, pace: Pace, recover: Callable[[str], int], now: datetime
) -> dict[str, int]:
    """Take over every quiet executor this process can claim: {its id: workflows re-enqueued}."""
    cutoff = now - timedelta(seconds=pace.dead_after_s)
    taken: dict[str, int] = {}
    for dead in quiet(db, me, cutoff):
        gen = claim(db, dead, me, now, cutoff)
        if gen is None:
            continue
        free_leases(db, gen)
        if not still_claimed(db, dead, me, gen):
            log.warning("executor %s came back during its takeover: left to it", dead)
            continue
        taken[dead] = recover(dead)
        forget(db, dead, me, gen)
        log.warning("took over executor %s: %d workflow(s) re-enqueued", dead, taken[dead])
    return taken


class Heartbeat:
    """The beating and reaping thread of one service process."""

    def __init__(self, db: Engine, me: str, pace: Pace, recover: Callable[[str], int],
                 on_lost: Callable[[], None], clock: Clock = wall_clock) -> None:  # fmt: skip
        self.db, self.me, self.pace, self.recover = db, me, pace, recover
        self.on_lost, self.clock = on_lost, clock
        self.taken: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fatctl-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        register(self.db, self.me, self.clock, self.pace)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.pace.heartbeat_s):
            try:
                if not beat(self.db, self.me, self.clock()):
                    log.error("executor %s was taken over by another worker: stopping", self.me)
                    self.on_lost()
                    return
                self.taken.update(sweep(self.db, self.me, self.pace, self.recover, self.clock()))
            except Exception:  # a database hiccup: the next beat tries again
                log.exception("heartbeat of %s failed", self.me)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
