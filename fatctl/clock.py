"""The one wall clock of fatctl's flows, and fixed clocks for tests and replays.

A flow that reasons about calendar time (credential expiry, freshness, audit stamps) takes a
`Clock` and reads it once per decision, passing the same clock (or the instant it read) down to
everything it calls. Reading `datetime.now` deep inside a helper is how a test that fixed `now`
at its top ended up comparing against the real date: only this module reads the wall clock.
Monotonic timers for timeouts and polling are another thing (`time.monotonic`) and stay apart.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The current time, timezone-aware in UTC (never the machine's local zone)."""
    return datetime.now(UTC)


def fixed(at: datetime) -> Clock:
    """A clock that always reads `at` (which must carry a timezone)."""
    if at.tzinfo is None:
        raise ValueError("a fixed clock needs a timezone-aware datetime")
    return lambda: at
