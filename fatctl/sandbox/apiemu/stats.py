"""Call counters of an emulator, so benchmarks can print calls per provision and 429s."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

_NUMERIC = re.compile(r"/(\d+|[0-9a-f]{32})(?=/|$)")


def endpoint_key(method: str, path: str) -> str:
    """`GET /v1/servers/42/actions/7` -> `GET /v1/servers/{id}/actions/{id}` (ids and
    Cloudflare's 32-hex ids are folded so counts group by endpoint)."""
    return f"{method} {_NUMERIC.sub('/{id}', path)}"


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._events: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0

    def call(self, method: str, path: str) -> None:
        with self._lock:
            self._calls[endpoint_key(method, path)] += 1

    def enter(self) -> None:
        """An API request started (paired with `leave`): how many clients had in flight."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def status(self, code: int) -> None:
        with self._lock:
            self._statuses[code] += 1

    def event(self, name: str) -> None:
        """Count an injected fault or a notable outcome (`rate_limited`, `dropped` ...)."""
        with self._lock:
            self._events[name] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self._calls.values()),
                "calls": dict(self._calls),
                "statuses": {str(k): v for k, v in self._statuses.items()},
                "events": dict(self._events),
                "rate_limited": self._statuses.get(429, 0),
                "max_in_flight": self._max_in_flight,
            }

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._statuses.clear()
            self._events.clear()
            self._max_in_flight = self._in_flight
