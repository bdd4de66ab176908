"""Process identity for the boxes: a pid is signalled only while it is still the same process.

A pid alone can be recycled; (pid, start time in clock ticks since boot) cannot, so records
keep both and every kill checks them first.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat, or None if the process is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int, started: int) -> bool:
    return start_time(pid) == started


def kill_verified(pid: int, started: int, sig: int = signal.SIGKILL, wait: float = 10) -> bool:
    """Send `sig` if (pid, started) is still that process; True once it is gone."""
    if not alive(pid, started):
        return True
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not alive(pid, started):
            return True
        time.sleep(0.1)
    return False
