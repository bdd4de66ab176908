"""How a box's health command result becomes a `BoxHealth` (pure)."""

from __future__ import annotations

import json

from fatctl.services.reconcile.run import parse_health


def report(**kw: object) -> str:
    return json.dumps({"healthy": True, "gateway": "active", "runtime_version": "2026.9.6",
                       "problems": [], **kw})  # fmt: skip


def test_healthy_report() -> None:
    box = parse_health("a", None, 0, "noise before\n" + report() + "\n", "")
    assert (box.reachable, box.healthy, box.runtime_version, box.problem) == (
        True, True, "2026.9.6", ""
    )  # fmt: skip


def test_unhealthy_report_lists_problems() -> None:
    out = report(healthy=False, problems=["gateway not running", "disk 98% full"])
    box = parse_health("a", None, 1, out, "")
    assert not box.healthy and box.problem == "gateway not running; disk 98% full"


def test_exit_code_wins_over_a_healthy_claim() -> None:
    box = parse_health("a", None, 2, report(), "")
    assert box.reachable and not box.healthy and box.problem == "exit 2"


def test_no_report_and_unreachable() -> None:
    missing = parse_health("a", None, 127, "", "sh: fat-health: not found\n")
    assert missing.reachable and not missing.healthy
    assert missing.problem == "no health report: sh: fat-health: not found"
    assert parse_health("a", None, 0, "[1, 2]", "").problem == "no health report: exit 0"
    gone = parse_health("a", "a (192.0.2.1) port 22: connection refused", None, "", "")
    assert not gone.reachable and gone.problem.endswith("connection refused")
