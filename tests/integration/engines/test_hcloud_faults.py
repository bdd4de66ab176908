"""The hcloud engine under the emulator's injected faults: 429s with Retry-After, 5xx, locks,
lost responses; and the rate budget fed from the RateLimit headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fatctl.errors import CloudError
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.retry import RateBudget
from fatctl.pacing.timing import Timing
from tests.integration.engines.conftest import agent_spec, emulator_settings

PATIENT = Timing(poll_interval=0.0, retry_base=0.5, retry_cap=120.0, retry_attempts=8)


def make(emulator: Any, tmp_path: Path, sleeps: list[float], **kw: Any) -> HcloudEngine:
    return HcloudEngine(
        emulator_settings(emulator, tmp_path),
        timing=kw.pop("timing", PATIENT),
        sleep=sleeps.append,
        budget=kw.pop("budget", RateBudget("hetzner-test")),
    )


def test_rate_limited_calls_wait_what_the_server_says(
    hetzner_emulator: Any, tmp_path: Path
) -> None:
    sleeps: list[float] = []
    engine = make(hetzner_emulator, tmp_path, sleeps)
    hetzner_emulator.set_faults(rate_limit_burst=3, retry_after=7)
    info = engine.apply(agent_spec())
    assert info.status == "running"
    # Retry-After honoured, not our exponential backoff; the budget's pacing (time stands
    # still here) never waits longer than the server said.
    assert sleeps.count(7.0) == 3 and max(sleeps) <= 7.0, sleeps


def test_server_errors_and_locks_are_retried(
    hetzner_emulator: Any, tmp_path: Path, hcloud_client: Any
) -> None:
    sleeps: list[float] = []
    engine = make(hetzner_emulator, tmp_path, sleeps, timing=Timing(0.0, 100_000, 0.01, 0.1, 12))
    hetzner_emulator.set_faults(error_rate=0.15, locked_rate=0.15, conflict_rate=0.1, seed=7)
    info = engine.apply(agent_spec())
    hetzner_emulator.clear_faults()
    assert info.status == "running" and sleeps  # it did have to retry
    assert len(hcloud_client.servers.get_all(label_selector="agent=alice")) == 1


def test_lost_responses_never_duplicate(
    hetzner_emulator: Any, tmp_path: Path, hcloud_client: Any
) -> None:
    sleeps: list[float] = []
    engine = make(hetzner_emulator, tmp_path, sleeps, timing=Timing(0.0, 100_000, 0.0, 0.0, 10))
    hetzner_emulator.set_faults(drop_response_rate=0.3, seed=3)
    for _ in range(4):  # a run may still give up; a rerun converges, never duplicates
        try:
            engine.apply(agent_spec())
            break
        except CloudError:
            continue
    hetzner_emulator.clear_faults()
    info = engine.apply(agent_spec())
    assert info.status == "running"
    sel = "managed-by=fatctl,agent=alice"
    assert len(hcloud_client.servers.get_all(label_selector=sel)) == 1
    assert len(hcloud_client.primary_ips.get_all(label_selector=sel)) == 2
    assert len(hcloud_client.firewalls.get_all(label_selector=sel)) == 1


def test_giving_up_is_one_clear_error(hetzner_emulator: Any, tmp_path: Path) -> None:
    sleeps: list[float] = []
    engine = make(hetzner_emulator, tmp_path, sleeps, timing=Timing(0.0, 10, 0.0, 0.0, 3))
    hetzner_emulator.set_faults(error_rate=1.0, error_statuses=(503,))
    with pytest.raises(CloudError) as err:
        engine.status("alice")
    assert "gave up after retries" in err.value.one_line()
    assert hetzner_emulator.token not in err.value.one_line()
    assert len(sleeps) == 2  # three attempts


def test_budget_tracks_headers_and_slows_down(tmp_path: Path) -> None:
    from fatctl.sandbox.hetzner import start_emulator

    handle = start_emulator(tmp_path / "h", rate_limit=40)
    try:
        sleeps: list[float] = []
        budget = RateBudget("hetzner-small", reserve=0.5)
        engine = make(handle, tmp_path, sleeps, budget=budget, timing=Timing.instant())
        engine.apply(agent_spec())
        view = budget.view()
        assert view.limit == 40
        assert view.remaining is not None and view.remaining < 20
        assert view.requests_seen > 20
        assert view.throttled_s > 0 and sum(sleeps) == pytest.approx(view.throttled_s)
    finally:
        handle.stop()


def test_a_lock_held_by_a_running_action_is_waited_out(
    hetzner_emulator: Any, tmp_path: Path, hcloud_client: Any
) -> None:
    """An action whose answer was lost still holds the server: the next call is refused
    `locked` however often it is retried at once, and goes through once that action ends."""
    from fatctl.infra.hcloud import ops

    sleeps: list[float] = []
    engine = make(hetzner_emulator, tmp_path, sleeps, timing=Timing(0.01, 100_000, 0.0, 0.0, 2))
    engine.apply(agent_spec())
    hetzner_emulator.set_faults(action_delays={"reboot_server": 1.5})
    server = hcloud_client.servers.get_all(label_selector="agent=alice")[0]
    server.reboot()  # nobody waits for it, as when its answer never arrived
    ops.reboot(engine.h, server)
    commands = [a.command for a in server.get_actions(status=["success"])]
    assert commands.count("reboot_server") == 2, commands
