"""Bad input to `fatctl upgrade` and `fatctl converge` is one line and exit 2, before any
database or SSH work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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
    env = {**os.environ, "FATCTL_DATABASE_URL": f"sqlite:///{tmp_path}/missing/x.db"}
    command = args if args[0] == "converge" else ["upgrade", *args]
    proc = subprocess.run(
        [sys.executable, "-m", "fatctl", *command], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "missing").exists()
