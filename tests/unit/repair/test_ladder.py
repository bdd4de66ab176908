"""The repair policy (`services.repair.ladder.decide`): who is left alone, when the ladder
starts, which rung comes next, and that it never loops: simulated fleets of sweeps and repairs
(hypothesis) never run more rungs than the policy allows and never touch a paged box again."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fatctl.config import Settings
from fatctl.errors import BadInput
from fatctl.services.repair.ladder import (
    FAILED,
    OK,
    PAGE,
    PAGED,
    REBOOT,
    REBUILD,
    RELEASE,
    RESTART,
    RUNGS,
    RUNNING,
    STALE_AFTER,
    Attempt,
    Box,
    Leave,
    Page,
    Policy,
    Probe,
    Repair,
    decide,
    parse_rungs,
    policies_from,
)

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
SWEEP = timedelta(minutes=5)
POLICY = Policy()
BOX = Box("a1", "ready", "managed")


def sweeps(*oks: bool, start: datetime = T0) -> list[Probe]:
    return [Probe(start + i * SWEEP, ok) for i, ok in enumerate(oks)]


def after(probes: list[Probe]) -> datetime:
    return probes[-1].at + timedelta(seconds=30)


def test_a_healthy_or_briefly_failing_box_is_left_alone() -> None:
    for probes in (sweeps(True, True), sweeps(True, False), sweeps(False, True), []):
        assert isinstance(decide(probes, [], BOX, POLICY, T0 + SWEEP * 5), Leave)


def test_two_failed_sweeps_in_a_row_start_with_a_restart() -> None:
    probes = sweeps(True, False, False)
    assert decide(probes, [], BOX, POLICY, after(probes)) == Repair(RESTART, 1)


def test_a_degraded_box_is_repaired_too() -> None:
    probes = sweeps(False, False)
    box = Box("a1", "degraded", "byok")
    assert decide(probes, [], box, POLICY, after(probes)) == Repair(RESTART, 1)


@pytest.mark.parametrize(
    ("box", "why"),
    [
        (Box("a1", "suspended", "managed"), "agent is suspended"),
        (Box("a1", "archived", "managed"), "agent is archived"),
        (Box("a1", "upgrading", "managed"), "agent is upgrading"),
        (Box("a1", "provisioning", "managed"), "agent is provisioning"),
        (Box("a1", "ready", "managed", hold="operator"), "held by an operator"),
        (Box("a1", "ready", "managed", hold=PAGED), "paged: `fatctl repair release` first"),
        (Box("a1", "ready", "managed", open_op="rebuild"), "unfinished rebuild op"),
        (Box("a1", "ready", "managed", in_rollout=True), "in a rollout"),
    ],
)
def test_boxes_repair_must_leave_alone(box: Box, why: str) -> None:
    probes = sweeps(False, False, False, False)
    assert decide(probes, [], box, POLICY, after(probes)) == Leave(why)


def test_a_plan_without_a_ladder_is_never_repaired() -> None:
    probes = sweeps(False, False, False)
    assert decide(probes, [], BOX, Policy(rungs=()), after(probes)) == Leave(
        "no repair ladder for plan managed"
    )


def _attempt(rung: str, at: datetime, result: str = OK, took: timedelta = SWEEP / 5) -> Attempt:
    return Attempt(rung, at, None if result == RUNNING else at + took, result)


def test_the_ladder_climbs_only_after_a_sweep_says_the_rung_did_not_help() -> None:
    probes = sweeps(False, False)
    restart = _attempt(RESTART, after(probes))
    # No sweep since the restart ended: wait for one, do not stack a reboot on it.
    assert decide(probes, [restart], BOX, POLICY, after(probes) + SWEEP / 2) == Leave(
        "waiting for a sweep after the restart"
    )
    probes = sweeps(False, False, False)
    assert decide(probes, [restart], BOX, POLICY, after(probes)) == Repair(REBOOT, 2)
    reboot = _attempt(REBOOT, after(probes), FAILED)
    probes = sweeps(False, False, False, False)
    assert decide(probes, [restart, reboot], BOX, POLICY, after(probes)) == Repair(REBUILD, 3)


def test_an_exhausted_ladder_pages() -> None:
    probes = sweeps(False, False)
    done = []
    for rung in RUNGS:
        done.append(_attempt(rung, after(probes)))
        probes = sweeps(*([False] * (len(probes) + 1)))
    action = decide(probes, done, BOX, POLICY, after(probes))
    assert action == Page("repair ladder exhausted (restart, reboot, rebuild)")


def test_a_running_repair_is_waited_for_until_it_is_stale() -> None:
    probes = sweeps(False, False, False)
    running = _attempt(RESTART, probes[1].at + timedelta(seconds=1), RUNNING)
    assert decide(probes, [running], BOX, POLICY, after(probes)) == Leave("a repair is running")
    # A row left running by a process that died is a failed rung once it is stale.
    later = running.started_at + STALE_AFTER + SWEEP
    probes = sweeps(*([False] * int((later - T0) / SWEEP)))  # failing all along
    assert decide(probes, [running], BOX, POLICY, later) == Repair(REBOOT, 2)


def test_a_recovered_box_starts_a_new_incident_at_the_first_rung() -> None:
    probes = sweeps(False, False, True, True, False, False)
    restart = _attempt(RESTART, probes[1].at + timedelta(seconds=30))
    assert decide(probes, [restart], BOX, POLICY, after(probes)) == Repair(RESTART, 1)


def test_a_box_repaired_too_often_in_the_window_pages_instead_of_looping() -> None:
    policy = Policy(max_per_window=3)
    history: list[Probe] = []
    attempts: list[Attempt] = []
    at = T0
    for _ in range(3):  # fails, a restart fixes it, fails again
        history += [Probe(at, False), Probe(at + SWEEP, False)]
        attempts.append(_attempt(RESTART, at + SWEEP + timedelta(seconds=30)))
        history.append(Probe(at + 2 * SWEEP, True))
        at += 3 * SWEEP
    history += [Probe(at, False), Probe(at + SWEEP, False)]
    action = decide(history, attempts, BOX, policy, at + SWEEP + timedelta(seconds=30))
    assert action == Page("3 repairs within 24 h: not repairing in a loop")
    # Outside the window they no longer count.
    later = at + timedelta(hours=25)
    history += [Probe(later - SWEEP, False), Probe(later, False)]
    assert decide(history, attempts, BOX, policy, later + timedelta(seconds=1)) == Repair(
        RESTART, 1
    )


def test_a_release_starts_the_ladder_afresh() -> None:
    probes = sweeps(*([False] * 8))
    done = [_attempt(r, probes[2 + 2 * i].at + timedelta(seconds=1)) for i, r in enumerate(RUNGS)]
    released = Attempt(RELEASE, after(probes), after(probes), OK)
    probes = [*probes, Probe(released.started_at + SWEEP, False)]
    assert decide(probes, [*done, released], BOX, POLICY, after(probes)) == Repair(RESTART, 1)


def test_settings_make_each_plans_ladder_and_bad_ones_are_refused() -> None:
    base = Settings(data_dir="/tmp/x", database_url="sqlite://")  # type: ignore[arg-type]
    from dataclasses import replace

    policies = policies_from(replace(base, repair_rungs_byok="restart", repair_after_failures="3"))
    assert policies.of("managed") == Policy(RUNGS, 3, 5, timedelta(hours=24))
    assert policies.of("byok").rungs == (RESTART,)
    assert policies.of("unknown").rungs == ()
    assert parse_rungs("off", "X") == ()
    with pytest.raises(BadInput, match="FATCTL_REPAIR_RUNGS_MANAGED: unknown repair rung 'wipe'"):
        policies_from(replace(base, repair_rungs_managed="restart,wipe"))
    with pytest.raises(BadInput, match="FATCTL_REPAIR_WINDOW_H: 'soon' is not a number"):
        policies_from(replace(base, repair_window_h="soon"))
    with pytest.raises(BadInput, match="FATCTL_REPAIR_GATE_S: '0' must be above 0"):
        policies_from(replace(base, repair_gate_s="0"))
    with pytest.raises(BadInput, match="FATCTL_REPAIR_GATE_S: 'long' is not a number"):
        policies_from(replace(base, repair_gate_s="long"))
    with pytest.raises(BadInput, match="only once"):
        Policy(rungs=(RESTART, RESTART))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"repair_window_h": "nan"}, "FATCTL_REPAIR_WINDOW_H: 'nan' must be a finite number"),
        ({"repair_window_h": "inf"}, "FATCTL_REPAIR_WINDOW_H: 'inf' must be a finite number"),
        ({"repair_window_h": "1e300"}, "FATCTL_REPAIR_WINDOW_H: '1e300' must be above 0 and at"),
        ({"repair_window_h": "0"}, "FATCTL_REPAIR_WINDOW_H: '0' must be above 0"),
        ({"repair_gate_s": "nan"}, "FATCTL_REPAIR_GATE_S: 'nan' must be a finite number"),
        ({"repair_gate_s": "1e999"}, "FATCTL_REPAIR_GATE_S: '1e999' must be a finite number"),
        ({"repair_after_failures": "1e3"}, "FATCTL_REPAIR_AFTER_FAILURES: '1e3' is not a number"),
    ],
)
def test_non_finite_and_overflowing_settings_are_one_line(
    changes: dict[str, str], says: str
) -> None:
    """Review 29, finding 11: 'nan' passed `<= 0` checks and then raised ValueError (and 1e300
    OverflowError) inside `timedelta`, so `fatctl serve` stopped with a traceback; now each is
    the one-line BadInput (exit 2) naming its setting."""
    from dataclasses import replace

    base = Settings(data_dir="/tmp/x", database_url="sqlite://")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match=re.escape(says)):
        policies_from(replace(base, **changes))


# --- never loops: a simulated box over many sweeps ------------------------------------------

RUNG_OUTCOMES = st.sampled_from([OK, FAILED])


@settings(max_examples=300, deadline=None)
@given(
    health=st.lists(st.booleans(), min_size=1, max_size=120),
    outcomes=st.lists(RUNG_OUTCOMES, min_size=120, max_size=120),
    rungs=st.lists(st.sampled_from(RUNGS), unique=True, max_size=3).map(tuple),
    after_failures=st.integers(1, 4),
    most=st.integers(1, 6),
    window_sweeps=st.integers(1, 300),
)
def test_never_loops(
    health: list[bool],
    outcomes: list[str],
    rungs: tuple[str, ...],
    after_failures: int,
    most: int,
    window_sweeps: int,
) -> None:
    """Whatever the box does: at most `max_per_window` rungs in any window, no rung twice in
    one run of failures, nothing at all after a page (the hold it leaves), and a rung only
    after `after_failures` failed sweeps in a row."""
    policy = Policy(rungs, after_failures, most, window_sweeps * SWEEP)
    probes: list[Probe] = []
    attempts: list[Attempt] = []
    paged = False
    for i, ok in enumerate(health):
        now = T0 + i * SWEEP
        probes.append(Probe(now, ok))
        box = Box("a1", "ready", "managed", hold=PAGED if paged else None)
        action = decide(probes, attempts, box, policy, now + timedelta(seconds=1))
        if paged:
            assert isinstance(action, Leave)
        if isinstance(action, Page):
            paged = True
            attempts.append(Attempt(PAGE, now, now, PAGED))
        elif isinstance(action, Repair):
            run = 0
            for p in reversed(probes):
                if p.ok:
                    break
                run += 1
            assert run >= after_failures
            start = now + timedelta(seconds=2)
            attempts.append(Attempt(action.rung, start, start + SWEEP / 10, outcomes[i]))
    done = [a for a in attempts if a.rung in RUNGS]
    for a in done:
        in_window = [b for b in done if timedelta(0) <= a.started_at - b.started_at < policy.window]
        assert len(in_window) <= most
    # Within one run of failures each rung runs at most once, in the ladder's order.
    for start in range(len(probes)):
        if probes[start].ok or (start and not probes[start - 1].ok):
            continue
        end = next((j for j in range(start, len(probes)) if probes[j].ok), len(probes))
        stop = probes[end].at if end < len(probes) else T0 + timedelta(days=365)
        seen = [a.rung for a in done if probes[start].at <= a.started_at < stop]
        assert tuple(seen) == rungs[: len(seen)]
