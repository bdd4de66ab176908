"""The shipped alert rules, checked and unit-tested by the real promtool (Debian `prometheus`).

`fatctl.rules.test.yml` beside this file holds the cases: series as fatctl's /metrics exposes
them, and the alerts that must (and must not) be firing at each time.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fatctl.monitoring.rules import RULES_FILE, rules_text

HERE = Path(__file__).parent
pytestmark = pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")


def promtool(*args: str, cwd: Path = HERE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_shipped_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 12 rules found" in done.stdout


def test_the_rules_fire_for_exactly_the_series_that_break_them() -> None:
    done = promtool("test", "rules", "fatctl.rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_test_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """Guards the guard: the same cases against rules whose `for:` is shortened must fail (an
    alert fires earlier than the cases say), so the cases do pin the durations."""
    (tmp_path / "rules.yml").write_text(rules_text(for_duration="1m"))
    cases = (HERE / "fatctl.rules.test.yml").read_text()
    cases = cases.replace("../../../fatctl/monitoring/rules/fatctl.rules.yml", "rules.yml")
    (tmp_path / "cases.yml").write_text(cases)
    done = promtool("test", "rules", "cases.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "alertname: AgentDown, time: 4m" in done.stdout + done.stderr


def test_shortened_rules_keep_every_expression_and_pass_check(tmp_path: Path) -> None:
    short = rules_text(for_duration="2s")
    shipped = RULES_FILE.read_text()

    def for_lines(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip().startswith("for:")]

    def other_lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.strip().startswith("for:")]

    assert len(for_lines(shipped)) == 9 and "for: 2s" not in for_lines(shipped)
    assert for_lines(short) == ["for: 2s"] * 9
    assert other_lines(short) == other_lines(shipped)
    (tmp_path / "short.yml").write_text(short)
    done = promtool("check", "rules", str(tmp_path / "short.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("bad", ["2 s", "soon", "", "5m\n  expr: up"])
def test_a_bad_duration_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        rules_text(for_duration=bad)
