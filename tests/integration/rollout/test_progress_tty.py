"""The progress bar on a real terminal (a pty), and none of it without one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect

from tests.integration.rollout.conftest import BoxFleet
from tests.integration.rollout.harness import NEW


def test_bar_on_a_terminal_and_clean_pipes(
    box_fleet: Callable[[int], BoxFleet], tmp_path: Path
) -> None:
    box = box_fleet(3)
    out = tmp_path / "stdout.txt"
    env = {**os.environ, **box.env}
    env.pop("CI", None)
    command = f"exec {sys.executable} -m fatctl upgrade --to {NEW} --all --batch 2 > {out}"
    child = pexpect.spawn("sh", ["-c", command], env=env, encoding="utf-8", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    terminal = child.before or ""
    assert child.exitstatus == 0, terminal
    assert "[" + "#" * 20 + "] 3/3 hosts  wave 1: box2 box3 (2/2 done)" in terminal
    assert "canary: box1 (1/1 done)" in terminal
    printed = out.read_text()
    assert "host.done agent=box1" in printed and "3/3 hosts" not in printed  # bar: stderr only

    piped = subprocess.run(
        [sys.executable, "-m", "fatctl", "rollout", "abort", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and "host.rollback agent=box1" in piped.stdout
