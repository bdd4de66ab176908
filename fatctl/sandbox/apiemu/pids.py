"""Stop a sandbox process found through a pid file, safely: only if /proc says the pid still
runs the expected program (a pid can be reused), SIGTERM first, SIGKILL after a grace time."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def runs(pid: int, marker: str) -> bool:
    """Whether `pid` is alive and `marker` is one of its command-line arguments."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return marker.encode() in cmdline


def reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, marker: str, timeout: float) -> bool:
    """Stop the process if it is still the one we started; False if it was not running."""
    if not runs(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(pid)
        if not runs(pid, marker):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.05)
    reap(pid)
    return True
