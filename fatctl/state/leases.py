"""Named, expiring leases in the state database, so two runs on one agent cannot race.

A lease is a row in `leases` (name, holder `host:pid:nonce`, since, expires). Taking it is one
short transaction that reads the row and then inserts it, or takes it over when it is free:
expired, or held by a process that is dead on this host. A holder on another host is trusted
until its lease expires, since we cannot see its processes.

The read-decide-write must be exclusive per name:
- PostgreSQL: `pg_advisory_xact_lock(hash(name))` first. Chosen over `SELECT ... FOR UPDATE`
  because the first taker finds no row to lock (two INSERTs would race, and the loser's
  transaction aborts); the advisory key exists whether or not the row does. It is held for
  milliseconds, not for the lease's life: leases last minutes to hours, and pinning a
  connection per lease (rollouts hold many) would tie correctness to connection lifetime and
  break behind transaction-pooling proxies. Liveness comes from the heartbeat instead.
- SQLite: `BEGIN IMMEDIATE` takes the database's write lock before the read, which is the
  single-host equivalent (other writers queue on the busy timeout).

A holder renews its lease from a heartbeat thread (every third of the expiry window, at most
every 30 s), so the window only has to cover a silent holder: callers' TTLs are capped at
`MAX_SILENCE_S`. A holder that finds its lease taken over (it was stopped past expiry) fails
at the end of its block rather than claiming a run that may have overlapped another.

Shared per context: `fatctl provision` holds the agent's lease from before the agent's row
is created (two runs of a new name would otherwise race to insert it) around the service,
which takes the same lease again.

Waiting: a command's `--wait SECONDS` installs a `WaitPolicy` for leases taken below it, so
services need not thread the option through. Waiters poll (`WAITER_POLL`, or the `poll` a
caller passes); they are not served in arrival order, which two CI jobs on one agent do not need.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fatctl.clock import wall_clock
from fatctl.errors import LeaseHeld
from fatctl.pacing.poll import Poll

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

MAX_SILENCE_S = 300.0  # a live holder renews well within this; a silent one loses it after
MAX_BEAT_S = 30.0


@dataclass(frozen=True)
class LeaseRow:
    """Who holds a lease, since when, until when (unless renewed)."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """`pid 123 on host h since 2026-11-21 21:03:05Z`, for one-line messages."""
        host, pid, _ = _split(self.holder)
        since = self.acquired_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return f"pid {pid or '?'} on host {host or '?'} since {since}"


WAITER_POLL = Poll(0.5)  # how often a waiter asks whether a busy lease came free


@dataclass(frozen=True)
class WaitPolicy:
    """How long a busy lease is waited for, and who is told about the wait."""

    wait_s: float = 0.0
    on_wait: Callable[[LeaseRow], None] | None = None


_POLICY: ContextVar[WaitPolicy | None] = ContextVar("fatctl_lease_wait", default=None)
# Leases this context holds with `shared=True` (name, holder): taking one of them again is a
# no-op, so a command can hold its agent's lease around a service that takes it itself.
_HELD: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("fatctl_leases_held", default=())


@contextmanager
def waiting(wait_s: float, on_wait: Callable[[LeaseRow], None] | None = None) -> Iterator[None]:
    """Leases taken inside this block wait up to `wait_s` for a busy holder."""
    token = _POLICY.set(WaitPolicy(wait_s, on_wait))
    try:
        yield
    finally:
        _POLICY.reset(token)


def new_holder() -> str:
    """`host:pid:nonce` — enough to tell whether the holder is still alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _split(holder: str) -> tuple[str, int | None, str]:
    try:
        host, pid_text, nonce = holder.rsplit(":", 2)
        return host, int(pid_text), nonce
    except ValueError:
        return "", None, ""


def holder_is_dead(holder: str) -> bool:
    """True only when the holder ran on this host and its process is gone."""
    host, pid, _ = _split(holder)
    if pid is None or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _as_aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (Python's hash() is salted per process)."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextmanager
def _exclusive(engine: Engine, *names: str) -> Iterator[Connection]:
    """One transaction in which no other taker of `names` can read or write their rows."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.begin() as conn:
            # In key order: two takers of overlapping sets cannot each hold what the other waits on.
            for key in sorted({advisory_key(name) for name in names}):
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            yield conn
        return
    # pysqlite would open a deferred transaction by itself: run it in autocommit and say
    # BEGIN IMMEDIATE, so the write lock is held from before the read.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")


def _table() -> Any:
    from fatctl.state.models import Lease

    return Lease.__table__  # type: ignore[attr-defined]


def _window(ttl_s: float) -> timedelta:
    return timedelta(seconds=max(1.0, min(ttl_s, MAX_SILENCE_S)))


def read(engine: Engine, name: str) -> LeaseRow | None:
    from sqlalchemy import select

    table = _table()
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.name == name)).first()
    return None if row is None else _row(row)


def _row(row: Any) -> LeaseRow:
    return LeaseRow(row.name, row.holder, _as_aware(row.acquired_at), _as_aware(row.expires_at))


def try_acquire(engine: Engine, name: str, holder: str, ttl_s: float) -> LeaseRow | None:
    """Take the lease; return None on success, else who holds it."""
    with _exclusive(engine, name) as conn:
        return _take(conn, name, holder, ttl_s)


def try_acquire_many(
    engine: Engine, names: list[str], holder: str, ttl_s: float
) -> dict[str, LeaseRow]:
    """Take every free lease among `names` in one transaction (a wave of a rollout: one write
    instead of one per box); return the busy ones, each with who holds it."""
    busy: dict[str, LeaseRow] = {}
    with _exclusive(engine, *names) as conn:
        for name in names:
            if (other := _take(conn, name, holder, ttl_s)) is not None:
                busy[name] = other
    return busy


def _take(conn: Connection, name: str, holder: str, ttl_s: float) -> LeaseRow | None:
    """Inside `_exclusive`: insert or take over the row of `name`, or return its live holder."""
    from sqlalchemy import insert, select, update

    table = _table()
    now = wall_clock()
    values = {"holder": holder, "acquired_at": now, "expires_at": now + _window(ttl_s)}
    row = conn.execute(select(table).where(table.c.name == name)).first()
    if row is None:
        conn.execute(insert(table).values(name=name, **values))
        return None
    current = _row(row)
    live = current.expires_at > now and not holder_is_dead(current.holder)
    if live and current.holder != holder:
        return current
    conn.execute(update(table).where(table.c.name == name).values(**values))
    return None


def renew(engine: Engine, name: str, holder: str, ttl_s: float) -> bool:
    """Push the expiry forward; False when the lease is no longer ours."""
    return _renew(engine, [name], holder, ttl_s) == 1


def _renew(engine: Engine, names: list[str], holder: str, ttl_s: float) -> int:
    """Push the expiry of our leases among `names` forward; how many are still ours."""
    from sqlalchemy import update

    table = _table()
    with engine.begin() as conn:
        done = conn.execute(
            update(table)
            .where(table.c.name.in_(names), table.c.holder == holder)
            .values(expires_at=wall_clock() + _window(ttl_s))
        )
    return int(done.rowcount)


def release(engine: Engine, name: str, holder: str) -> None:
    _release(engine, [name], holder)


def _release(engine: Engine, names: list[str], holder: str) -> None:
    from sqlalchemy import delete

    table = _table()
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.name.in_(names), table.c.holder == holder))


class _Heartbeat(threading.Thread):
    """Renews leases held together until stopped; remembers whether one was lost meanwhile."""

    def __init__(self, engine: Engine, names: list[str], holder: str, ttl_s: float) -> None:
        super().__init__(name=f"lease-heartbeat:{names[0]}", daemon=True)
        self.engine, self.names, self.holder, self.ttl_s = engine, names, holder, ttl_s
        self.every = min(_window(ttl_s).total_seconds() / 3, MAX_BEAT_S)
        self.stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                if _renew(self.engine, self.names, self.holder, self.ttl_s) < len(self.names):
                    self.lost = True
                    return
            except Exception:  # noqa: S112  a database hiccup: the next beat tries again
                continue


@contextmanager
def _renewed(engine: Engine, names: list[str], holder: str, ttl_s: float) -> Iterator[_Heartbeat]:
    """Keep `holder`'s leases `names` renewed for the block and release them after it; the
    yielded heartbeat says, once the block is over, whether one was taken over meanwhile."""
    beat = _Heartbeat(engine, names, holder, ttl_s)
    beat.start()
    try:
        yield beat
    finally:
        beat.stopped.set()
        beat.join()
        _release(engine, names, holder)


def _acquire(engine: Engine, name: str, holder: str, ttl_s: float, policy: WaitPolicy,
             poll: Poll) -> None:  # fmt: skip
    deadline = poll.deadline(policy.wait_s)
    told = False
    while (other := try_acquire(engine, name, holder, ttl_s)) is not None:
        if poll.expired(deadline):
            waited = f"; gave up after {policy.wait_s:g}s" if policy.wait_s else ""
            hint = None if policy.wait_s else "pass --wait SECONDS to queue behind it"
            raise LeaseHeld(f"{name} is busy: held by {other.describe()}{waited}", hint=hint)
        if policy.on_wait and not told:
            policy.on_wait(other)
            told = True
        poll.sleep(min(poll.interval, poll.left(deadline)))


@contextmanager
def lease(
    engine: Engine,
    name: str,
    *,
    ttl_s: float = 900.0,
    wait_s: float | None = None,
    poll: Poll = WAITER_POLL,
    on_wait: Callable[[LeaseRow], None] | None = None,
    shared: bool = False,
) -> Iterator[str]:
    """Hold `name` for the block, renewing it; wait for a busy holder as the policy says.

    `wait_s`/`on_wait` override the policy installed by `waiting()` (default: fail at once).
    `shared=True` lends the lease to inner `lease()` calls of the same name in this context
    (they yield its holder and take nothing); a plain lease is never re-entered, so a second
    run in one process is still refused.
    """
    if held := dict(_HELD.get()).get(name):
        yield held
        return
    policy = _POLICY.get() or WaitPolicy()
    if wait_s is not None or on_wait is not None:
        policy = WaitPolicy(policy.wait_s if wait_s is None else wait_s, on_wait or policy.on_wait)
    holder = new_holder()
    _acquire(engine, name, holder, ttl_s, policy, poll)
    with _renewed(engine, [name], holder, ttl_s) as beat:
        token = _HELD.set((*_HELD.get(), (name, holder)) if shared else _HELD.get())
        try:
            yield holder
        finally:
            _HELD.reset(token)
    if beat.lost:
        current = read(engine, name)
        who = current.describe() if current else "another run"
        raise LeaseHeld(f"{name} was taken over by {who} while this run held it")


@contextmanager
def free_ones(engine: Engine, names: list[str], *, ttl_s: float = 900.0) -> Iterator[set[str]]:
    """Hold every lease among `names` that is free now, for the block; yields the names taken.

    One transaction takes them all, one heartbeat renews them and one releases them: a rollout
    wave's boxes cost three writes instead of three per box. The busy ones are left to the
    caller, which takes each with `lease()` (and its wait policy) or reports it. As with
    `lease()`, a lease taken over meanwhile fails the block at its end.
    """
    if not names:
        yield set()
        return
    holder = new_holder()
    busy = try_acquire_many(engine, names, holder, ttl_s)
    taken = [name for name in names if name not in busy]
    if not taken:
        yield set()
        return
    with _renewed(engine, taken, holder, ttl_s) as beat:
        yield set(taken)
    if beat.lost:
        raise LeaseHeld(f"one of {', '.join(taken)} was taken over while this run held it")
