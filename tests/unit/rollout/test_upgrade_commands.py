"""The upgrade builders: checked as strings, and run for real by `sh` on a temporary layout."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import replace
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
    return cmd.BoxLayout(root=str(tmp_path / "opt"), sudo=False, lock=str(tmp_path / "lock"))


@pytest.mark.parametrize("bad", ["../etc", "a b", "-rf", "", "1;reboot", ".hidden", "x/y"])
def test_bad_versions_are_refused(layout: cmd.BoxLayout, bad: str) -> None:
    for build in (cmd.activation_steps, cmd.activation):
        with pytest.raises(ValueError, match="bad runtime version"):
            build(layout, bad, True)
    with pytest.raises(ValueError, match="bad runtime version"):
        cmd.switch(layout, bad)


def test_production_layout_runs_through_sudo_and_systemd() -> None:
    prod = cmd.BoxLayout()
    restart = cmd.restart(prod)
    # The lock lives where only root can create files (not world-writable /run/lock).
    lock = "install -d -m 0700 /run/fat && flock -o -w 900 -E 175 /run/fat/rollout.lock"
    assert restart.startswith(f"sudo -n -- sh -c '{lock}")
    assert "systemctl restart --no-pager openclaw-gateway.service" in restart
    assert cmd.health(prod) == "sudo -n -- sh -c 'fat-health --json'"  # read-only: no lock
    assert "/opt/openclaw/current.fatctl-new" in cmd.switch(prod, "2026.9.6")
    assert "--no-switch" in cmd.activation(prod, "2026.9.6", install_first=True)


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
    verify = dict(cmd.activation_steps(layout, "2026.9.6", install_first=True))["test boot"]
    assert sh(verify).stdout.strip() == "2026.9.6"
    (root / "2026.9.6" / ".installed").unlink()
    half = sh(verify)
    assert half.returncode == 3 and "not fully installed" in half.stderr
    (root / "2026.9.6" / ".installed").write_text("x")
    (root / "2026.9.6" / "bin" / "openclaw").write_text("#!/bin/sh\nexit 4\n")
    assert sh(verify).returncode == 4


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


def _scripts(line: str) -> list[str]:
    """The script a builder runs and every `sh -c` script nested in it (sudo's, flock's)."""
    words = shlex.split(line)
    found = [line] if words[:2] != ["sudo", "-n"] else []
    for at, word in enumerate(words[:-2]):
        if word == "sh" and words[at + 1] == "-c":
            found += _scripts(words[at + 2])
    return found


def test_every_builder_passes_shellcheck() -> None:
    import shutil

    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    prod = cmd.BoxLayout()
    checked_scripts = 0
    stages = [body for _, body in cmd.activation_steps(prod, "2026.9.6", install_first=True)]
    for line in (
        cmd.current_version(prod),
        cmd.switch(prod, "2026.9.6"),
        cmd.activation(prod, "2026.9.6", install_first=True),
        cmd.prune(prod, 3, ("2026.9.5",)),
        cmd.restart_if_stale(prod),
        *stages,
    ):
        for script in _scripts(line):
            checked = subprocess.run(
                ["shellcheck", "-s", "sh", "-S", "warning", "-"],
                input=script,
                capture_output=True,
                text=True,
            )
            assert checked.returncode == 0, (script, checked.stdout)
            checked_scripts += 1
    # four locked builders outside and inside the lock, the prune, the four stages on their own
    assert checked_scripts >= 13


def test_restart_is_needed_only_for_a_gateway_older_than_the_switch(tmp_path: Path) -> None:
    started, restarts = tmp_path / "started", tmp_path / "restarts"
    layout = cmd.BoxLayout(
        root=str(tmp_path / "opt"),
        started=f"cat {started}",
        restart=f"echo restart >> {restarts}",
        sudo=False,
        lock=str(tmp_path / "lock"),
    )
    installed(tmp_path / "opt", "2026.9.6", time.time())
    assert sh(cmd.switch(layout, "2026.9.6")).returncode == 0
    switched = os.lstat(layout.current).st_mtime
    cases = ((switched - 60, "restarted"), (switched + 1, "fresh"), (None, "restarted"))
    for at, expected in cases:
        started.write_text("" if at is None else f"{int(at)}\n")
        done = sh(cmd.restart_if_stale(layout))
        assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr
    started.unlink()  # start time unknown: restart rather than trust it
    assert sh(cmd.restart_if_stale(layout)).stdout.strip() == "restarted"
    assert restarts.read_text().split() == ["restart"] * 3


def test_activation_runs_its_stages_in_order_and_stops_at_the_first_failure(
    layout: cmd.BoxLayout, tmp_path: Path
) -> None:
    from fatctl.remote.commands.staged import parse

    events = tmp_path / "events"
    layout = replace(
        layout,
        install=f"echo install {{version}} >> {events}",
        restart=f"echo restart >> {events}",
    )
    installed(Path(layout.root), "2026.9.5", time.time())
    (Path(layout.root) / "current").symlink_to("2026.9.5")
    # The install "installs" nothing: the marker check of the test boot fails, nothing moves.
    failed = sh(cmd.activation(layout, "2026.9.6", install_first=True))
    assert failed.returncode == 3 and "not fully installed" in failed.stderr
    assert parse(failed.stdout).started == ("install", "test boot")
    assert os.readlink(layout.current) == "2026.9.5"
    assert events.read_text().split() == ["install", "2026.9.6"]

    installed(Path(layout.root), "2026.9.6", time.time())
    done = sh(cmd.activation(layout, "2026.9.6", install_first=True))
    assert done.returncode == 0, done.stderr
    names = [name for name, _ in cmd.activation_steps(layout, "2026.9.6", install_first=True)]
    assert parse(done.stdout).started == tuple(names)
    assert names == ["install", "test boot", "switch to 2026.9.6", "restart"]
    assert parse(done.stdout).of("test boot").strip() == "2026.9.6"  # the binary's --version
    assert os.readlink(layout.current) == "2026.9.6"
    assert events.read_text().split()[-3:] == ["install", "2026.9.6", "restart"]

    back = sh(cmd.activation(layout, "2026.9.5", install_first=False))  # a rollback: no install
    assert parse(back.stdout).started == ("switch to 2026.9.5", "restart"), back.stderr
    assert os.readlink(layout.current) == "2026.9.5"


def test_a_locked_command_waits_for_the_holder_and_says_when_it_gave_up(
    layout: cmd.BoxLayout, tmp_path: Path
) -> None:
    """An orphan of a killed fatctl holds the lock: the next command waits for it, and a holder
    that never lets go ends the wait with a one-line reason. What the holder starts in the
    background (a gateway) does not inherit the lock."""
    mark = tmp_path / "orphan-done"
    orphan = subprocess.Popen(
        ["sh", "-c", cmd.locked(layout, f"sleep 1; touch {mark}")],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)  # the orphan holds the lock now
        waited = sh(cmd.locked(layout, f"test -e {mark} && echo saw-it"))
        assert (waited.returncode, waited.stdout.strip()) == (0, "saw-it"), waited.stderr
    finally:
        orphan.wait(timeout=10)

    daemon = cmd.locked(layout, "setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $!")
    pid = int(sh(daemon).stdout)
    try:
        free = sh(cmd.locked(layout, "echo free", wait_s=2))
        assert (free.returncode, free.stdout.strip()) == (0, "free"), free.stderr
    finally:
        os.kill(pid, 9)

    holder = subprocess.Popen(["flock", layout.lock, "sleep", "5"])
    try:
        time.sleep(0.3)
        gave_up = sh(cmd.locked(layout, "echo never", wait_s=1))
    finally:
        holder.kill()
        holder.wait()
    assert gave_up.returncode == cmd.LOCK_TIMEOUT_EXIT and gave_up.stdout == ""
    assert gave_up.stderr.strip() == (
        f"rollout lock {layout.lock} still held after 1s (an earlier fatctl's command?)"
    )
