"""One API rate budget shared by every service process, kept in the state database.

`RateBudget` mirrors the server's bucket inside one process; N workers each holding their own
mirror would each spend what they believe is left, N times over. Here the mirror lives in one
row per API (`rate_budgets`, migration 0013) and every process takes its requests' tokens from
it under a row lock (PostgreSQL `SELECT ... FOR UPDATE`, SQLite `BEGIN IMMEDIATE`), a few at a
time so that the database is not asked once per request. The row refills at the rate the
server's headers imply (Hetzner's bucket) or all at once at the window's reset (Cloudflare's),
and every process's answers pull it down to the server's count less what that process holds
or has in flight: the row only ever errs on the side of fewer requests. Below the reserve the
row hands out places in one queue for all processes, each with its wait, like `RateBudget.take`
does for threads.

The arithmetic (`Share`, `refill`, `grant`, `sync`) is pure; `BudgetStore` is the SQL around it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from fatctl.pacing.budget import STALE_MARGIN_S, RateBudget

# With no refill known yet (a window whose end is unknown) a taker under the reserve asks
# again after this, and after UNKNOWN_REFILL_TRIES such waits sends one request anyway: only
# an answer can tell the row its refill, so a row that never grants would stall for good.
UNKNOWN_REFILL_WAIT_S = 1.0
UNKNOWN_REFILL_TRIES = 30
# A bucket whose refill rate no answer has taught yet (its first answers were 429s, which
# `RateBudget` does not learn from) is assumed to refill its quota over this long: Hetzner's
# documented bucket (3600 an hour, one back per second). Slower than the truth errs the safe way.
ASSUMED_FILL_S = 3600.0
# Tokens a process takes from the row at once while the budget is above its reserve.
DEFAULT_BATCH = 5
# How often one process writes what its answers said into the row (429s at once).
SYNC_EVERY_S = 0.5


@dataclass(frozen=True)
class Share:
    """The shared estimate of one API's bucket (a `rate_budgets` row)."""

    quota: int | None = None
    tokens: float | None = None  # None: no answer seen yet
    rate: float | None = None  # tokens per second (a continuously refilled bucket)
    stamp: float = 0.0
    reset_at: float | None = None  # a window's end (UNIX seconds); None for a bucket
    span: float | None = None  # a window's length; None for a bucket
    granted: int = 0
    waits: int = 0


@dataclass(frozen=True)
class Said:
    """What one process learnt from its latest answer, in the row's terms."""

    quota: int | None
    remaining: int | None
    rate: float | None
    reset_at: float | None
    span: float | None
    outstanding: int  # tokens this process holds plus its requests on the wire


def bucket_rate(share: Share) -> float | None:
    """The row's refill per second: the learnt rate, else the assumed one for a bucket with a
    known quota (a window has none: it refills at its end)."""
    if share.rate or share.span or not share.quota:
        return share.rate
    return share.quota / ASSUMED_FILL_S


def refill(share: Share, now: float) -> Share:
    """The estimate at `now`: a bucket gains `rate` per second up to its quota; a window is
    full again once its end (plus the margin for a late, rounded-up `t`) has passed, and the
    next ends a span later at the latest."""
    if share.tokens is None or not share.quota:
        return replace(share, stamp=now)
    if share.span and share.reset_at is not None:
        if now >= share.reset_at + STALE_MARGIN_S:
            return replace(share, tokens=float(share.quota), reset_at=now + share.span, stamp=now)
        return replace(share, stamp=now)
    rate = bucket_rate(share)
    if rate:
        gained = max(0.0, now - share.stamp) * rate
        return replace(share, tokens=min(float(share.quota), share.tokens + gained), stamp=now)
    return replace(share, stamp=now)


def grant(share: Share, now: float, want: int, reserve: float) -> tuple[Share, int, float]:
    """Take up to `want` tokens: (the new row, tokens granted, wait before the first is used).

    Above the reserve: as many as are there, no wait. Below it: one token, at its place in the
    queue (the row goes negative by the queue's length), or none when no refill is known."""
    share = refill(share, now)
    if share.tokens is None or not share.quota:
        return replace(share, granted=share.granted + want), want, 0.0  # the first answer tells
    floor = share.quota * reserve
    above = math.floor(share.tokens - floor)
    if above >= 1:
        n = min(want, above)
        return replace(share, tokens=share.tokens - n, granted=share.granted + n), n, 0.0
    left = share.tokens - 1.0
    rate = bucket_rate(share)
    if rate and not share.span:
        wait = (floor - left) / rate
    elif share.span and share.reset_at is not None:
        usable = share.quota - floor
        later = math.ceil((floor - left) / usable) - 1 if usable >= 1 else 0
        wait = max(0.0, share.reset_at + STALE_MARGIN_S - now) + share.span * max(0, later)
    else:
        return replace(share, waits=share.waits + 1), 0, UNKNOWN_REFILL_WAIT_S
    taken = replace(share, tokens=left, granted=share.granted + 1, waits=share.waits + 1)
    return taken, 1, wait


def sync(share: Share, now: float, said: Said) -> Share:
    """Fold one answer into the row: the server's count less this process's outstanding tokens
    caps the estimate (never raises it: other processes' tokens are not in that count); the
    quota, refill rate and window's end are the server's."""
    share = refill(share, now)
    quota = said.quota or share.quota
    rate = said.rate or share.rate
    span = said.span or share.span
    reset_at = share.reset_at
    if said.reset_at is not None and span:
        reset_at = max(reset_at or said.reset_at, said.reset_at)
    tokens = share.tokens
    if said.remaining is not None:
        truth = float(said.remaining - said.outstanding)
        tokens = truth if tokens is None else min(tokens, truth)
    return replace(share, quota=quota, rate=rate, span=span, reset_at=reset_at, tokens=tokens)


# The queries are constants (no value is ever formatted into them; values are bound).
_SELECT = ("SELECT quota, tokens, rate, stamp, reset_at, span, granted, waits FROM rate_budgets "
           "WHERE api = :api")  # fmt: skip
_UPDATE = ("UPDATE rate_budgets SET quota = :quota, tokens = :tokens, rate = :rate, "
           "stamp = :stamp, reset_at = :reset_at, span = :span, granted = :granted, "
           "waits = :waits WHERE api = :api")  # fmt: skip


class BudgetStore:
    """The `rate_budgets` rows: read, change and write one under its row lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _locked(self, api: str) -> Iterator[tuple[Connection, Share]]:
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                insert = "INSERT INTO rate_budgets (api, stamp, granted, waits) "
                conn.execute(text(insert + "VALUES (:api, 0, 0, 0) ON CONFLICT DO NOTHING"),
                             {"api": api})  # fmt: skip
                locked = conn.execute(text(_SELECT + " FOR UPDATE"), {"api": api}).one()
                yield conn, Share(*locked)
            return
        # pysqlite would open a deferred transaction by itself: BEGIN IMMEDIATE holds the
        # write lock from before the read (as state.leases does).
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                conn.execute(text("INSERT OR IGNORE INTO rate_budgets (api, stamp, granted, "
                                  "waits) VALUES (:api, 0, 0, 0)"), {"api": api})  # fmt: skip
                yield conn, Share(*conn.execute(text(_SELECT), {"api": api}).one())
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

    @staticmethod
    def _write(conn: Connection, api: str, share: Share) -> None:
        conn.execute(text(_UPDATE), {"api": api, **share.__dict__})

    def take(self, api: str, want: int, reserve: float, now: float) -> tuple[int, float]:
        with self._locked(api) as (conn, share):
            share, n, wait = grant(share, now, want, reserve)
            self._write(conn, api, share)
        return n, wait

    def sync(self, api: str, said: Said, now: float) -> None:
        with self._locked(api) as (conn, share):
            self._write(conn, api, sync(share, now, said))

    def read(self, api: str) -> Share | None:
        with self.engine.connect() as conn:
            row = conn.execute(text(_SELECT), {"api": api}).one_or_none()
        return None if row is None else Share(*row)


class SharedBudget(RateBudget):
    """A `RateBudget` (same interface for the clients) whose waits come from the shared row.

    The local mirror still learns from every answer (rate, window, the wait hint of a 429) and
    still keeps Cloudflare's count of this process's own requests (`_admit`); what it no longer
    decides is how long a request waits for the bucket: one queue for all processes does."""

    def __init__(
        self,
        api: str,
        store: BudgetStore,
        *,
        batch: int = DEFAULT_BATCH,
        reserve: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(api, reserve=reserve, clock=clock)
        self.store, self.batch = store, batch
        self._held = 0  # tokens taken from the row and not yet used
        self._share_lock = threading.Lock()
        self._synced_at = -math.inf
        self.shared_waits = 0
        self.shared_wait_s = 0.0

    def pace(self, sleep: Callable[[float], None] = time.sleep) -> None:
        wait = self._take_shared()
        with self._lock:
            self._in_flight += 1  # the local mirror's count of requests on the wire
            if wait > 0:
                self.throttled_s += wait
                self.paced_requests += 1
        if wait > 0:
            sleep(wait)
        self._await_admission(sleep)

    def _take_shared(self) -> float:
        with self._share_lock:
            if self._held > 0:
                self._held -= 1
                return 0.0
            for _ in range(UNKNOWN_REFILL_TRIES):
                n, wait = self.store.take(self.api, self.batch, self.reserve, self.clock())
                if n > 0:
                    self._held = n - 1
                    break
                time.sleep(wait)  # no refill known yet: ask again (rare: a window, no end)
            else:
                return 0.0  # a probe: its answer teaches the row what no wait can
            if wait > 0:
                self.shared_waits += 1
                self.shared_wait_s += wait
            return wait

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        super().observe(status, headers)
        now = self.clock()
        if status != 429 and now - self._synced_at < SYNC_EVERY_S:
            return
        self._synced_at = now
        with self._lock:
            said = Said(self.limit, self.remaining, None if self.window else self.rate,
                        self.reset_at if self.window else None, self.span if self.window else None,
                        self._held + self._in_flight)  # fmt: skip
        self.store.sync(self.api, said, now)

    def figures(self) -> dict[str, Any]:
        """What this process waited for the shared budget (for the proof and the bench)."""
        return {"api": self.api, "shared_waits": self.shared_waits,
                "shared_wait_s": round(self.shared_wait_s, 3),
                "requests_seen": self.requests_seen}  # fmt: skip
