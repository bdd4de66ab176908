"""A test run killed with SIGTERM leaves nothing behind: a child pytest holding a real sshd
fleet, the Hetzner API emulator and a booted nspawn box is sent SIGTERM; afterwards none of its
processes is alive, and the host's network namespaces, mounts, links and users (the sshd
fleet's throwaway accounts) are as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fatctl.sandbox import netns
from tests.fixtures.boxes import require_boxes

ROOT = Path(__file__).resolve().parents[2]
CHILD = "tests/reliability/sigterm_child.py"
BOX = 230  # a fixture box number no other test uses


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _host_state() -> tuple[list[str], list[str], list[str], list[str]]:
    netns = sorted(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                  check=False).stdout.split("\n"))  # fmt: skip
    mounts = sorted(Path("/proc/self/mounts").read_text().splitlines())
    links = sorted(os.listdir("/sys/class/net"))
    users = sorted(line.split(":", 1)[0] for line in Path("/etc/passwd").read_text().splitlines())
    return netns, mounts, links, users


@pytest.mark.root
@pytest.mark.slow
def test_sigterm_runs_every_cleanup(tmp_path: Path) -> None:
    require_boxes()
    # The boxes' shared bridge is host plumbing every box test leaves up (like docker0): make
    # sure it exists before the snapshot, so the comparison is about what the child owned.
    netns.ensure_bridge()
    before = _host_state()
    ready = tmp_path / "ready"
    env = {**os.environ, "FATCTL_SIGTERM_READY": str(ready), "FATCTL_SIGTERM_BOX": str(BOX),
           # This process may hold the box lock already; the child boots its one box beside.
           "FATCTL_BOX_LOCK": str(tmp_path / "boxes.lock")}  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", CHILD,
         f"--basetemp={tmp_path / 'child'}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while not ready.exists():
            assert child.poll() is None, child.communicate()[0]
            assert time.monotonic() < deadline, "the child never got its fixtures up"
            time.sleep(1)
        held = _descendants(child.pid)
        assert len(held) >= 4, "sshd, emulator and box processes should be running"
        assert _host_state() != before, "the child's box should have added a namespace or link"

        child.send_signal(signal.SIGTERM)
        output = child.communicate(timeout=300)[0]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    alive = [pid for pid in held if Path(f"/proc/{pid}").exists()]
    assert not alive, f"left running after SIGTERM: {alive}\n{output}"
    assert _host_state() == before, output
