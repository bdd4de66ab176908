"""The upgrade builders: checked as strings, and run for real by `sh` on a temporary layout."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from fatctl.remote.commands import upgrade as cmd


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True)


def installed(root: Path, version: str, at: float) -> None:
    (root / version / "bin").mkdir(parents=True)
    gw = root / version / "bin" / "openclaw"
    gw.write_text(f"#!/bin/sh\necho {version}\n")
    gw.chmod(0o755)
    marker = root / version / ".installed"
    marker.write_text(version)
    os.utime(marker, (at, at))


@pytest.fixture
def layout(tmp_path: Path) -> cmd.BoxLayout:
    return cmd.BoxLayout(root=str(tmp_path / "opt"), sudo=False)


@pytest.mark.parametrize("bad", ["../etc", "a b", "-rf", "", "1;reboot", ".hidden", "x/y"])
def test_bad_versions_are_refused(layout: cmd.BoxLayout, bad: str) -> None:
    for build in (cmd.install, cmd.verify, cmd.switch):
        with pytest.raises(ValueError, match="bad runtime version"):
            build(layout, bad)


def test_production_layout_runs_through_sudo_and_systemd() -> None:
    prod = cmd.BoxLayout()
    assert cmd.restart(prod) == (
        "sudo -n -- sh -c 'systemctl restart --no-pager openclaw-gateway.service'"
    )
    assert cmd.health(prod) == "sudo -n -- sh -c 'fat-health --json'"
    assert "/opt/openclaw/current.fatctl-new" in cmd.switch(prod, "2026.9.6")
    assert "--no-switch" in cmd.install(prod, "2026.9.6")


def test_switch_and_read_current(layout: cmd.BoxLayout) -> None:
    root = Path(layout.root)
    assert sh(cmd.current_version(layout)).stdout.strip() == ""
    installed(root, "2026.9.5", time.time())
    assert sh(cmd.switch(layout, "2026.9.5")).returncode == 0
    assert sh(cmd.current_version(layout)).stdout.strip() == "2026.9.5"
    assert os.readlink(root / "current") == "2026.9.5"  # relative, like the install script's
    failed = sh(cmd.switch(layout, "2026.9.9"))  # not installed: current must not move
    assert failed.returncode != 0
    assert os.readlink(root / "current") == "2026.9.5"


def test_verify_needs_the_marker_and_a_booting_binary(layout: cmd.BoxLayout) -> None:
    root = Path(layout.root)
    installed(root, "2026.9.6", time.time())
    assert sh(cmd.verify(layout, "2026.9.6")).stdout.strip() == "2026.9.6"
    (root / "2026.9.6" / ".installed").unlink()
    half = sh(cmd.verify(layout, "2026.9.6"))
    assert half.returncode == 3 and "not fully installed" in half.stderr
    (root / "2026.9.6" / ".installed").write_text("x")
    (root / "2026.9.6" / "bin" / "openclaw").write_text("#!/bin/sh\nexit 4\n")
    assert sh(cmd.verify(layout, "2026.9.6")).returncode == 4


def test_prune_keeps_newest_current_and_protected(layout: cmd.BoxLayout) -> None:
    """keep=3: current (9.3) and the protected rollback target (9.1), plus the newest (9.6)."""
    root = Path(layout.root)
    now = time.time()
    versions = ["2026.9.1", "2026.9.2", "2026.9.3", "2026.9.4", "2026.9.5", "2026.9.6"]
    for age, version in enumerate(reversed(versions)):
        installed(root, version, now - 100 * age)
    (root / "current").symlink_to("2026.9.3")  # an old one is serving (e.g. after a rollback)
    done = sh(cmd.prune(layout, keep=3, protect=("2026.9.1", "2026.9.3")))
    assert done.returncode == 0, done.stderr
    left = sorted(p.name for p in root.iterdir() if p.name != "current")
    assert left == ["2026.9.1", "2026.9.3", "2026.9.6"]
    assert sorted(done.stdout.split()) == sorted(
        ["pruned"] * 3 + ["2026.9.2", "2026.9.4", "2026.9.5"]
    )
    with pytest.raises(ValueError):
        cmd.prune(layout, keep=0)


def test_prune_with_room_removes_nothing(layout: cmd.BoxLayout) -> None:
    root = Path(layout.root)
    for age, version in enumerate(["2026.9.6", "2026.9.5"]):
        installed(root, version, time.time() - age)
    (root / "current").symlink_to("2026.9.6")
    done = sh(cmd.prune(layout, keep=2))
    assert (done.returncode, done.stdout) == (0, "")
    assert sorted(p.name for p in root.iterdir()) == ["2026.9.5", "2026.9.6", "current"]


def test_every_builder_passes_shellcheck() -> None:
    import shutil

    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    prod = cmd.BoxLayout()
    for line in (
        cmd.current_version(prod),
        cmd.install(prod, "2026.9.6"),
        cmd.verify(prod, "2026.9.6"),
        cmd.switch(prod, "2026.9.6"),
        cmd.prune(prod, 3, ("2026.9.5",)),
        cmd.restarted_since_switch(prod),
    ):
        (script,) = shlex.split(line.removeprefix("sudo -n -- sh -c "))
        checked = subprocess.run(
            ["shellcheck", "-s", "sh", "-S", "warning", "-"],
            input=script,
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stdout


def test_restart_is_needed_only_for_a_gateway_older_than_the_switch(tmp_path: Path) -> None:
    started = tmp_path / "started"
    layout = cmd.BoxLayout(root=str(tmp_path / "opt"), started=f"cat {started}", sudo=False)
    installed(tmp_path / "opt", "2026.9.6", time.time())
    assert sh(cmd.switch(layout, "2026.9.6")).returncode == 0
    switched = os.lstat(layout.current).st_mtime
    for at, expected in ((switched - 60, "stale"), (switched + 1, "fresh"), (None, "stale")):
        started.write_text("" if at is None else f"{int(at)}\n")
        done = sh(cmd.restarted_since_switch(layout))
        assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr
    started.unlink()  # start time unknown: restart rather than trust it
    assert sh(cmd.restarted_since_switch(layout)).stdout.strip() == "stale"
