"""The clouds' API budgets, each speaking its cloud's headers. Thread-safe; the clock is
injectable for tests.

- `TokenBucket` (Hetzner: 3600 per hour, refilled continuously; `RateLimit-Limit`,
  `RateLimit-Remaining`, `RateLimit-Reset` as a UNIX time).
- `BlockingWindow` (Cloudflare: 1200 per 5 minutes; exceeding it blocks every call for the next
  five minutes; `Ratelimit: "default";r=..;t=..` and `Ratelimit-Policy: "default";q=..;w=..`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix time at which the bucket is full again
    retry_after: int  # seconds until one token is available (0 when allowed)
    reset_in: float = 0.0  # seconds from the verdict until reset_at, unrounded


class Limiter(Protocol):
    """What the middleware and the admin endpoints need of a budget."""

    capacity: int
    refused: int
    lowest: int

    def take(self) -> Verdict: ...

    def peek(self) -> Verdict: ...

    def reconfigure(self, capacity: int, window_seconds: float) -> None: ...

    def headers(self, verdict: Verdict) -> Headers: ...

    def exhausted(self, wait: int, now: float) -> Headers:
        """An injected 429 burst: the headers of a budget with nothing left for `wait` seconds
        (and whatever the cloud does to its budget after a 429)."""
        ...


class _Budget:
    """What both budgets share: a request takes its verdict, stats peek at it."""

    def take(self) -> Verdict:
        return self._check(consume=True)

    def peek(self) -> Verdict:
        """The budget as it stands, without spending anything (for stats)."""
        return self._check(consume=False)

    def _check(self, consume: bool) -> Verdict:
        raise NotImplementedError


def _valid(capacity: int, window_seconds: float) -> None:
    if capacity < 1 or window_seconds <= 0:
        raise ValueError("rate limit needs capacity >= 1 and a positive window")


class TokenBucket(_Budget):
    """`capacity` tokens, refilled at capacity/window per second; each request takes one."""

    def __init__(
        self, capacity: int, window_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        _valid(capacity, window_seconds)
        self.capacity = capacity
        self.rate = capacity / window_seconds
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp = clock()
        self._lock = threading.Lock()
        # How close clients came to the limit: requests refused for want of a token, and the
        # fewest tokens ever left after a request (reliability tests check both).
        self.refused = 0
        self.lowest = capacity

    def reconfigure(self, capacity: int, window_seconds: float) -> None:
        """A new limit (a full bucket) for tests that need the budget to bind within minutes."""
        _valid(capacity, window_seconds)
        with self._lock:
            self.capacity, self.rate = capacity, capacity / window_seconds
            self._tokens, self._stamp = float(capacity), self._clock()
            self.refused, self.lowest = 0, capacity

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def _check(self, consume: bool) -> Verdict:
        with self._lock:
            now = self._clock()
            self._refill(now)
            allowed = self._tokens >= 1.0
            if allowed and consume:
                self._tokens -= 1.0
                self.lowest = min(self.lowest, int(self._tokens))
            elif consume:
                self.refused += 1
            missing = self.capacity - self._tokens
            reset_at = math.ceil(now + missing / self.rate)
            wait = 0 if allowed else math.ceil((1.0 - self._tokens) / self.rate)
            return Verdict(allowed, self.capacity, int(self._tokens), reset_at, wait)

    def headers(self, verdict: Verdict) -> Headers:
        return [
            (b"ratelimit-limit", str(verdict.limit).encode()),
            (b"ratelimit-remaining", str(verdict.remaining).encode()),
            (b"ratelimit-reset", str(verdict.reset_at).encode()),
        ]

    def exhausted(self, wait: int, now: float) -> Headers:
        return self.headers(Verdict(False, self.capacity, 0, int(now) + wait, wait))


class BlockingWindow(_Budget):
    """Cloudflare's global API limit: `capacity` requests per `window_seconds`; the request
    past it is refused and so is every request for the next `block_seconds`.

    developers.cloudflare.com/fundamentals/api/reference/limits: "The global rate limit for the
    Cloudflare API is 1,200 requests per five minute period per user ... If you exceed this
    limit, all API calls for the next five minutes will be blocked, receiving a HTTP 429
    response." The window starts at the first request after the last one ended."""

    def __init__(
        self,
        capacity: int,
        window_seconds: float,
        block_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.reconfigure(capacity, window_seconds, block_seconds)

    def reconfigure(
        self, capacity: int, window_seconds: float, block_seconds: float | None = None
    ) -> None:
        """A fresh window (the block lasts a window unless told otherwise)."""
        _valid(capacity, window_seconds)
        with self._lock:
            self.capacity, self.window = capacity, float(window_seconds)
            self.block = float(window_seconds if block_seconds is None else block_seconds)
            self._start, self._used, self._blocked_until = self._clock(), 0, 0.0
            self.refused, self.lowest = 0, capacity

    def _check(self, consume: bool) -> Verdict:
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                self.refused += int(consume)
                wait = math.ceil(self._blocked_until - now)
                return self._verdict(False, 0, self._blocked_until, wait, now)
            if now >= self._start + self.window:
                self._start, self._used = now, 0
            allowed = self._used < self.capacity
            if consume and allowed:
                self._used += 1
                self.lowest = min(self.lowest, self.capacity - self._used)
            elif consume:
                self.refused += 1
                # blocked, then a fresh window: after Cloudflare's five minutes the old one is over
                self._blocked_until = self._start = now + self.block
                self._used = 0
                wait = math.ceil(self.block)
                return self._verdict(False, 0, self._blocked_until, wait, now)
            return self._verdict(True, self.capacity - self._used, self._start + self.window, 0,
                                 now)  # fmt: skip

    def _verdict(self, allowed: bool, left: int, ends: float, wait: int, now: float) -> Verdict:
        return Verdict(allowed, self.capacity, left, math.ceil(ends), wait, ends - now)

    def headers(self, verdict: Verdict) -> Headers:
        reset_in = max(0, math.ceil(verdict.reset_in))  # "rounded up", once
        return cloudflare_headers(verdict.remaining, reset_in, verdict.limit,
                                  math.ceil(self.window))  # fmt: skip

    def exhausted(self, wait: int, now: float) -> Headers:
        """Cloudflare's 429 is its block, after which a new window begins: an injected one says
        nothing is left for `wait` seconds and starts the next window then, so a client that
        believes the headers (a fresh quota after `t`) stays within it. Unlike the real block,
        requests in the meantime are not refused: they count towards that next window."""
        with self._lock:
            self._start, self._used = now + wait, 0
        return cloudflare_headers(0, wait, self.capacity, math.ceil(self.window))


def cloudflare_headers(remaining: int, reset_in: int, quota: int, window: int) -> Headers:
    """developers.cloudflare.com/fundamentals/api/reference/limits, "Rate limiting headers":
    `Ratelimit`: "the limit name, the remaining quota (r) and the time next window resets (t).
    For example: "default";r=50;t=30"; `Ratelimit-Policy`: "the policy name, the total quota (q)
    and the time window the quota applies to (w). For example: "burst";q=100;w=60"."""
    return [
        (b"ratelimit", f'"default";r={remaining};t={reset_in}'.encode()),
        (b"ratelimit-policy", f'"default";q={quota};w={window}'.encode()),
    ]
