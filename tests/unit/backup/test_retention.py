"""The state backups' retention rule (`fatctl.services.backup.retention`) and its mirror in the
box's script (`fat-backup prune-plan`, jq): a table of the rule's cases, and a parity test that
runs the rendered script with the real jq on generated listings (`rclone lsjson`'s shape:
`[{"Name": ..., "IsDir": ...}]`, as `rclone lsjson --help` documents it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_init import layout as L
from cloud_init.files import render_files
from fatctl.domain import ServicePlan
from fatctl.services.backup.retention import STAMP_FORMAT, Policy, parse_object, to_delete
from tests.unit.cloud_init.variants import Variant, make_spec

NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)  # a Monday


def pair(at: datetime, kind: str = "scheduled") -> list[str]:
    stamp = at.strftime(STAMP_FORMAT)
    return [f"{stamp}-{kind}.json", f"{stamp}-{kind}.tar.gz.age"]


def test_daily_and_weekly_keep_the_newest_of_each() -> None:
    daily = [name for d in range(10) for name in pair(NOW - timedelta(days=d, hours=1))]
    two_a_day = pair(NOW - timedelta(days=1, hours=2))  # Dec 6 01:30, the older of two that day
    doomed = to_delete([*daily, *two_a_day], NOW, Policy(daily=3, weekly=2))
    # Kept: Dec 7, 6, 5 (daily); the weeks of Dec 7 and Nov 30 (Dec 7, Dec 6): days 0-2 only.
    kept = set(daily) - set(doomed)
    assert kept == {n for d in range(3) for n in pair(NOW - timedelta(days=d, hours=1))}
    assert set(two_a_day) <= set(doomed)


def test_weeks_reach_back_past_the_days() -> None:
    weekly = [name for w in range(6) for name in pair(NOW - timedelta(weeks=w, hours=1))]
    assert to_delete(weekly, NOW, Policy(daily=1, weekly=4)) == sorted(
        n for w in (4, 5) for n in pair(NOW - timedelta(weeks=w, hours=1))
    )


def test_manual_and_pre_expire_by_age_but_the_newest_pair_stays() -> None:
    old_manual = pair(NOW - timedelta(days=40), "manual")
    fresh_pre = pair(NOW - timedelta(days=29), "pre-move")
    assert to_delete([*old_manual, *fresh_pre], NOW) == sorted(old_manual)
    assert to_delete(old_manual, NOW) == []  # the only backup: never deleted


def test_lone_halves_wait_a_day_and_foreign_names_are_never_touched() -> None:
    young = pair(NOW - timedelta(hours=23))[1:]
    old = pair(NOW - timedelta(days=2))[:1]
    foreign = ["notes.txt", "20261399T000000Z-manual.json", "20261201T000000Z-Bad.json"]
    assert to_delete([*young, *old, *foreign], NOW) == old
    assert parse_object("20261399T000000Z-manual.json") is None


# The parity test: the rendered script's prune-plan against the Python rule.

KINDS = st.sampled_from(["scheduled", "scheduled", "manual", "pre-move", "pre-upgrade"])
JUNK = st.sampled_from(["notes.txt", "20260230T000000Z-manual.json", "20261201T000000Z-X.json",
                        "20261201T000000Z-manual.tar.gz"])  # fmt: skip


@st.composite
def listings(draw: st.DrawFn) -> tuple[list[str], datetime, Policy]:
    now = NOW + timedelta(seconds=draw(st.integers(0, 14 * 86400)))
    names: list[str] = []
    for _ in range(draw(st.integers(0, 25))):
        at = now - timedelta(seconds=draw(st.integers(-86400, 70 * 86400)))
        both = pair(at, draw(KINDS))
        names += (
            both if draw(st.booleans()) or draw(st.booleans()) else [draw(st.sampled_from(both))]
        )
    names += draw(st.lists(JUNK, max_size=2))
    policy = Policy(draw(st.integers(0, 8)), draw(st.integers(0, 5)), draw(st.integers(0, 40)))
    return sorted(set(names)), now, policy


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The rendered fat-backup, its policy file moved to where the test writes each policy."""
    tmp = tmp_path_factory.mktemp("prune")
    policy = tmp / "policy.conf"
    spec = make_spec(Variant("debian-12", False, ServicePlan.MANAGED, False))
    text = render_files(spec)[L.BACKUP_SCRIPT].content.replace(L.BACKUP_POLICY, str(policy))
    path = tmp / "fat-backup"
    path.write_text(text)
    path.chmod(0o755)
    return path, policy


@pytest.mark.skipif(not shutil.which("jq"), reason="jq is not installed")
@settings(max_examples=150, deadline=None)
@given(case=listings())
def test_the_scripts_prune_plan_matches_the_rule(
    script: tuple[Path, Path], case: tuple[list[str], datetime, Policy]
) -> None:
    names, now, policy = case
    path, policy_file = script
    policy_file.write_text(f"KEEP_DAILY={policy.daily}\nKEEP_WEEKLY={policy.weekly}\n"
                           f"KEEP_PRE_DAYS={policy.pre_days}\nREMOTE=r2:b/p/backups\n")  # fmt: skip
    listing = [{"Path": n, "Name": n, "Size": 1, "IsDir": False} for n in names]
    listing.append({"Path": "sub", "Name": "sub", "Size": -1, "IsDir": True})
    proc = subprocess.run([str(path), "prune-plan", "--now", str(int(now.timestamp()))],
                          input=json.dumps(listing), capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == to_delete(names, now, policy)


def test_an_unreadable_listing_fails_in_one_line(script: tuple[Path, Path]) -> None:
    """A failure nothing in the script anticipated (here: jq on a listing that is not JSON)
    still ends with exit 1 and one line, not a shell trace."""
    proc = subprocess.run([str(script[0]), "prune-plan", "--now", "1"], input="not json",
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1].startswith("fat-backup: unexpected failure at line ")
