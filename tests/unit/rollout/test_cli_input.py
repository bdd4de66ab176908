"""Bad input to `fatctl upgrade` and `fatctl converge` is one line and exit 2, before any
database or SSH work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import fatctl_env, run_fatctl


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--to", "../etc", "--all"], "bad runtime version"),
        (["--to", "2026.9.6", "--all", "--batch", "0"], "--batch"),
        (["--to", "2026.9.6", "--all", "--batch", "150%"], "--batch"),
        (["--to", "2026.9.6", "--all", "--batch", "ten"], "--batch"),
        (["converge", "--all", "--batch", "-1"], "--batch"),
        (["converge", "--all", "--templates", "/nonexistent/tree"], "not a template tree"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    # The database URL points nowhere usable: bad input must be refused before it is opened.
    env = fatctl_env(FATCTL_DATABASE_URL=f"sqlite:///{tmp_path}/missing/x.db")
    command = args if args[0] == "converge" else ["upgrade", *args]
    proc = run_fatctl(*command, env=env, timeout=None)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "missing").exists()
