"""`fatctl serve --workers N`: N `fatctl worker` child processes beside the API, supervised.

Each child is a whole `fatctl worker` (its own DBOS executor, heartbeat and share of the rate
budgets), started with the same environment (settings, context) and the same engine options.
Its executor id is the server's with the slot's number (`<serve id>-w1`, ...): distinct, and
the same for the slot's next process, so a restarted child recovers its own unfinished
workflows at launch at once instead of waiting for the reaper's timeout. A child that dies is
started again, after a pause that grows while it keeps dying young (a bad setting must not
turn into a fork loop); stopping the server stops the children (SIGTERM, then SIGKILL). A
server that dies without stopping them (SIGKILL outside systemd, whose KillMode=mixed would
kill them) takes them along: on Linux each child asks for a SIGTERM when its parent dies, or
the next server's children would beat under the same ids as the orphans.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("fatctl.service.workers")

CHECK_EVERY_S = 0.5
# A child that lived shorter than this died young: the next start waits longer (doubling).
YOUNG_S = 10.0
FIRST_RESTART_S = 0.5
MAX_RESTART_S = 30.0
STOP_GRACE_S = 30.0
# The supervising server's pid, in a child's environment (`die_with_parent`).
PARENT_ENV = "FATCTL_WORKER_PARENT_PID"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def spawn_child(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start one child, telling it who its parent is."""
    return subprocess.Popen(argv, env={**os.environ, PARENT_ENV: str(os.getpid())})


def die_with_parent() -> bool:
    """In a server's child: have the kernel send SIGTERM when the parent dies (Linux). True
    when it is already gone (it died before the request took effect): the child should stop."""
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit():
        return False  # not a server's child (a `fatctl worker` of its own)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    return os.getppid() != int(parent)


def child_ids(server_id: str, count: int) -> list[str]:
    """The executor ids of a server's worker slots (executor ids are at most 64 characters)."""
    return [f"{server_id[:58]}-w{i}" for i in range(1, count + 1)]


def worker_argv(executor_id: str, options: Sequence[str]) -> list[str]:
    """The command line of one child: this Python, fatctl's entry point, `worker`."""
    return [sys.executable, "-m", "fatctl", "worker", "--executor-id", executor_id, *options]


def next_pause(previous: float, lived_s: float) -> float:
    """How long to wait before starting a dead child again."""
    if lived_s >= YOUNG_S:
        return FIRST_RESTART_S
    return min(MAX_RESTART_S, max(FIRST_RESTART_S, previous * 2))


@dataclass
class Slot:
    executor_id: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    pause: float = 0.0
    due: float = 0.0  # when the next start may happen (after a death)
    restarts: int = 0
    history: list[int] = field(default_factory=list)  # pids, oldest first


class Supervisor:
    """Start the slots' processes, start again the ones that die, stop them all at the end."""

    def __init__(
        self,
        slots: list[Slot],
        spawn: Callable[[list[str]], subprocess.Popen[bytes]] = spawn_child,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots, self.spawn, self.clock = slots, spawn, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fatctl-workers", daemon=True)

    def start(self) -> Supervisor:
        for slot in self.slots:
            self._start(slot)
        self._thread.start()
        return self

    def _start(self, slot: Slot) -> None:
        slot.proc, slot.started = self.spawn(slot.argv), self.clock()
        slot.history.append(slot.proc.pid)

    def check(self) -> None:
        """One look at every slot: note deaths, start again the ones whose pause is over."""
        now = self.clock()
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is not None:
                code = slot.proc.returncode
                slot.pause = next_pause(slot.pause, now - slot.started)
                slot.due, slot.proc, slot.restarts = now + slot.pause, None, slot.restarts + 1
                log.warning("worker %s exited (%s): starting it again in %.1f s",
                            slot.executor_id, code, slot.pause)  # fmt: skip
            if slot.proc is None and now >= slot.due and not self._stop.is_set():
                self._start(slot)

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_EVERY_S):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        live = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_S
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
