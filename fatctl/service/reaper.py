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
a beat does, so a claimant that dies mid-takeover is itself taken over. Re-enqueueing twice
is harmless: DBOS re-enqueues only rows still PENDING under the dead executor's id, and a
dequeued workflow carries its new executor's id.

A process that finds its own row claimed was declared dead while it was still running (a stall
longer than the timeout): its workflows may already run elsewhere, so it must stop at once
(`on_lost`), before its next step: the worker exits and its supervisor starts it afresh.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, insert, or_, select, update

from fatctl.clock import Clock, wall_clock
from fatctl.errors import ConfigError
from fatctl.state.models import Lease, WorkerHeartbeat

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

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


def pace_from(settings: Settings) -> Pace:
    """The FATCTL_WORKER_* settings, checked: a bad one is one line, before anything starts."""
    try:
        beat, dead = float(settings.worker_heartbeat_s), float(settings.worker_dead_after_s)
        batch = int(settings.worker_budget_batch)
    except ValueError as exc:
        raise ConfigError(f"bad FATCTL_WORKER_* setting: {exc}") from None
    if beat <= 0 or batch < 1:
        raise ConfigError("FATCTL_WORKER_HEARTBEAT_S must be > 0, FATCTL_WORKER_BUDGET_BATCH >= 1")
    if dead < 2 * beat:
        raise ConfigError(
            f"FATCTL_WORKER_DEAD_AFTER_S ({dead:g}) must be at least twice "
            f"FATCTL_WORKER_HEARTBEAT_S ({beat:g}): a live worker would be taken over"
        )
    return Pace(beat, dead, batch)


def register(db: Engine, me: str, now: datetime) -> None:
    """This process's row, fresh (a restart under the same id replaces the old one)."""
    with db.begin() as conn:
        conn.execute(delete(TABLE).where(TABLE.c.executor_id == me))
        host, pid = socket.gethostname()[:255], os.getpid()
        row = {"executor_id": me, "host": host, "pid": pid, "started_at": now, "beat_at": now}
        conn.execute(insert(TABLE).values(**row))


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


def claim(db: Engine, dead: str, me: str, now: datetime, cutoff: datetime) -> bool:
    """Take over `dead`: one UPDATE whose condition only one claimant can still meet."""
    with db.begin() as conn:
        done = conn.execute(update(TABLE).where(TABLE.c.executor_id == dead, _quiet(cutoff))
                            .values(taken_by=me, taken_at=now))  # fmt: skip
    return bool(done.rowcount == 1)


def free_leases(db: Engine, dead: str) -> int:
    """Delete the leases held by the claimed executor's process (holder `host:pid:nonce`)."""
    with db.begin() as conn:
        row = conn.execute(select(TABLE.c.host, TABLE.c.pid)
                           .where(TABLE.c.executor_id == dead)).first()  # fmt: skip
        if row is None:
            return 0
        prefix = f"{row.host}:{row.pid}:"
        done = conn.execute(
            delete(LEASES).where(LEASES.c.holder.startswith(prefix, autoescape=True))
        )
    return int(done.rowcount)


def forget(db: Engine, dead: str, me: str) -> None:
    """The takeover is done: the dead executor's row goes (unless it came back meanwhile)."""
    with db.begin() as conn:
        conn.execute(delete(TABLE).where(TABLE.c.executor_id == dead, TABLE.c.taken_by == me))


def sweep(
    db: Engine, me: str, pace: Pace, recover: Callable[[str], int], now: datetime
) -> dict[str, int]:
    """Take over every quiet executor this process can claim: {its id: workflows re-enqueued}."""
    cutoff = now - timedelta(seconds=pace.dead_after_s)
    taken: dict[str, int] = {}
    for dead in quiet(db, me, cutoff):
        if claim(db, dead, me, now, cutoff):
            free_leases(db, dead)
            taken[dead] = recover(dead)
            forget(db, dead, me)
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
        register(self.db, self.me, self.clock())
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
