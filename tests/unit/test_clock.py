"""The one wall clock and its fixed stand-in (`fatctl.clock`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fatctl.clock import fixed, wall_clock


def test_wall_clock_is_aware_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: a local reading would be a day off
    time.tzset()
    try:
        now = wall_clock()
        assert now.utcoffset() == timedelta(0)
        assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_fixed_clock_reads_its_instant_and_refuses_naive_times() -> None:
    at = datetime(2041, 6, 30, 23, 0, tzinfo=UTC)
    clock = fixed(at)
    assert clock() == at and clock() == at
    with pytest.raises(ValueError, match="timezone"):
        fixed(datetime(2041, 6, 30, 23, 0))
