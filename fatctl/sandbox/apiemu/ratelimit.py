"""A token bucket like the clouds' API budgets (Hetzner: 3600 per hour, refilled continuously;
Cloudflare: 1200 per 5 minutes). Thread-safe; the clock is injectable for tests."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix time at which the bucket is full again
    retry_after: int  # seconds until one token is available (0 when allowed)


class TokenBucket:
    """`capacity` tokens, refilled at capacity/window per second; each request takes one."""

    def __init__(
        self, capacity: int, window_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        if capacity < 1 or window_seconds <= 0:
            raise ValueError("rate limit needs capacity >= 1 and a positive window")
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
        if capacity < 1 or window_seconds <= 0:
            raise ValueError("rate limit needs capacity >= 1 and a positive window")
        with self._lock:
            self.capacity, self.rate = capacity, capacity / window_seconds
            self._tokens, self._stamp = float(capacity), self._clock()
            self.refused, self.lowest = 0, capacity

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> Verdict:
        return self._check(consume=True)

    def peek(self) -> Verdict:
        """The budget as it stands, without spending a token (for stats)."""
        return self._check(consume=False)

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
