"""How close clients come to an emulator's rate budget: requests refused for want of a token,
the fewest tokens ever left, the most requests in flight at once, and a budget a test can
shrink so that it binds within seconds (tests/reliability/test_cloud_faults.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from fatctl.sandbox.apiemu.ratelimit import TokenBucket
from fatctl.sandbox.apiemu.stats import Stats


def test_bucket_counts_refusals_and_its_low_water_mark() -> None:
    now = [1_000_000.0]
    bucket = TokenBucket(3, 30.0, lambda: now[0])  # one token per 10 s
    assert [bucket.take().allowed for _ in range(5)] == [True, True, True, False, False]
    assert (bucket.refused, bucket.lowest) == (2, 0)
    bucket.reconfigure(10, 1.0)
    assert (bucket.refused, bucket.lowest, bucket.peek().remaining) == (0, 10, 10)
    with pytest.raises(ValueError):
        bucket.reconfigure(0, 1.0)


def test_stats_keep_the_most_requests_in_flight() -> None:
    stats = Stats()
    for _ in range(3):
        stats.enter()
    stats.leave()
    stats.enter()
    stats.leave()
    assert stats.snapshot()["max_in_flight"] == 3
    stats.reset()  # two still in flight: the new maximum starts there
    assert stats.snapshot()["max_in_flight"] == 2


def test_emulator_reports_an_overdrawn_budget(hetzner_emulator: Any) -> None:
    hetzner_emulator.set_rate_limit(5, 600.0)
    auth = {"Authorization": f"Bearer {hetzner_emulator.token}"}

    def get(_: int) -> int:
        return httpx.get(f"{hetzner_emulator.url}/locations", headers=auth).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(get, range(8)))
    budget = hetzner_emulator.stats()["budget"]
    assert sorted(statuses) == [200] * 5 + [429] * 3
    assert (budget["refused"], budget["lowest_remaining"], budget["limit"]) == (3, 0, 5)
    assert 1 <= hetzner_emulator.stats()["max_in_flight"] <= 4
