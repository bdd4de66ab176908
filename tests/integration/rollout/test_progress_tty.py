"""The progress bar on a real terminal (a pty), and none of it without one."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pexpect

from tests.fixtures.cli import fatctl_command, fatctl_env, run_fatctl
from tests.integration.rollout.conftest import BoxFleet
from tests.integration.rollout.harness import NEW


def test_bar_on_a_terminal_and_clean_pipes(
    box_fleet: Callable[[int], BoxFleet], tmp_path: Path
) -> None:
    box = box_fleet(3)
    out = tmp_path / "stdout.txt"
    env = fatctl_env(box.env, CI=None)  # the bar is for a person: CI would turn it off
    upgrade = fatctl_command("upgrade", "--to", NEW, "--all", "--batch", "2")
    command = f"exec {shlex.join(upgrade)} > {out}"
    child = pexpect.spawn("sh", ["-c", command], env=env, encoding="utf-8", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    terminal = child.before or ""
    assert child.exitstatus == 0, terminal
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal)  # rich's colours and cursor moves
    assert re.search(r"wave 1: box2 box3 \(2/2 done\) ━+ 3/3", plain), plain
    assert "canary: box1 (1/1 done)" in plain
    printed = out.read_text()
    assert "host.done agent=box1" in printed and "━" not in printed  # bar: stderr only

    piped = run_fatctl("rollout", "abort", "1", env=env, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and "host.rollback agent=box1" in piped.stdout
