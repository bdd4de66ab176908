"""Worker settings, slot ids, the supervisor's restarts, and the one private DBOS call."""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

import pytest

from fatctl.config import Settings
from fatctl.errors import ConfigError
from fatctl.service.reaper import Pace, pace_from
from fatctl.service.workers import (
    FIRST_RESTART_S,
    MAX_RESTART_S,
    YOUNG_S,
    Slot,
    Supervisor,
    child_ids,
    next_pause,
    worker_argv,
)


def settings(**changes: str) -> Settings:
    return dataclasses.replace(Settings(Path("/nonexistent"), "sqlite://"), **changes)


def test_pace_from_the_settings() -> None:
    assert pace_from(settings()) == Pace(10.0, 30.0, 5)
    fast = settings(worker_heartbeat_s="0.5", worker_dead_after_s="2")
    assert pace_from(fast) == Pace(0.5, 2.0, 5)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"worker_heartbeat_s": "x"}, "bad FATCTL_WORKER_HEARTBEAT_S: 'x' is not a number"),
        ({"worker_heartbeat_s": "0"}, "FATCTL_WORKER_HEARTBEAT_S (0) must be at least 0.1 s"),
        ({"worker_budget_batch": "0"}, "FATCTL_WORKER_BUDGET_BATCH (0) must be at least 1"),
        ({"worker_budget_batch": "x"}, "bad FATCTL_WORKER_BUDGET_BATCH: 'x'"),
        ({"worker_dead_after_s": "15"}, "at least twice"),
        # Review 29, finding 11: nan slipped past every comparison (Event.wait(nan) returns at
        # once: a busy loop of UPDATEs; timedelta(seconds=nan) raised in every sweep), inf and
        # 1e-9 were taken too.
        ({"worker_heartbeat_s": "nan"}, "bad FATCTL_WORKER_HEARTBEAT_S: 'nan' must be a finite"),
        ({"worker_heartbeat_s": "inf"}, "bad FATCTL_WORKER_HEARTBEAT_S: 'inf' must be a finite"),
        ({"worker_heartbeat_s": "1e-9"}, "FATCTL_WORKER_HEARTBEAT_S (1e-09) must be at least"),
        ({"worker_dead_after_s": "nan"}, "bad FATCTL_WORKER_DEAD_AFTER_S: 'nan' must be a finite"),
        ({"worker_dead_after_s": "1e999"}, "bad FATCTL_WORKER_DEAD_AFTER_S: '1e999' must be"),
        ({"worker_dead_after_s": "1e9"}, "FATCTL_WORKER_DEAD_AFTER_S (1e+09) must be at most"),
    ],
)
def test_bad_worker_settings_are_one_line(changes: dict[str, str], says: str) -> None:
    """Each message names the one setting at fault (review 29, finding 14: the batch case used
    to match the heartbeat's half of a combined message)."""
    with pytest.raises(ConfigError, match=re.escape(says)):
        pace_from(settings(**changes))


def test_a_runtime_with_workers_must_say_how_it_stops_when_taken_over() -> None:
    """Review 29, finding 2: a process that beats can be declared dead and its workflows run
    elsewhere; one that carried on (the old no-op `on_lost`) ran them twice."""
    from fatctl.service.context import Runtime
    from fatctl.service.runtime import _with_workers

    runtime = Runtime(None, None, settings(), lambda: None, workers=Pace(10.0, 30.0, 5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_lost"), _with_workers(runtime):
        pass


def test_a_taken_over_service_process_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every service process (serve as well as worker) gets `taken_over` from
    `service_runtime`: exit 3 at once, so systemd's Restart=on-failure starts it again."""
    from fatctl.cli import serve

    codes: list[int] = []
    monkeypatch.setattr(serve.os, "_exit", lambda code: codes.append(code))
    serve.taken_over()
    assert codes == [serve.TAKEN_OVER_EXIT] and serve.TAKEN_OVER_EXIT != 0
    assert "on_lost=taken_over" in inspect.getsource(serve.service_runtime)


CHILD = """
import ctypes, os
from fatctl.service.workers import die_with_parent
gone = die_with_parent()
sig = ctypes.c_int(0)
ctypes.CDLL(None).prctl(2, ctypes.byref(sig))  # PR_GET_PDEATHSIG
print(gone, sig.value)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_servers_child_dies_with_its_parent() -> None:
    """Review 29, finding 5 (related): a child started by the supervisor asks the kernel for
    SIGTERM at its parent's death, so a SIGKILLed server leaves no orphan beating under the
    slot's id for the next server's child; a child whose parent is already gone says so."""
    import os
    import signal
    import subprocess

    from fatctl.service.workers import PARENT_ENV, spawn_child

    proc = spawn_child([sys.executable, "-c", CHILD])
    assert proc.wait() == 0
    run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         env={**os.environ, PARENT_ENV: str(os.getpid())}, check=True)  # fmt: skip
    assert run.stdout.split() == ["False", str(int(signal.SIGTERM))]
    orphan = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                            env={**os.environ, PARENT_ENV: "999999999"}, check=True)  # fmt: skip
    assert orphan.stdout.split()[0] == "True"
    alone = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != PARENT_ENV},
                           check=True)  # fmt: skip
    assert alone.stdout.split() == ["False", "0"]  # a worker of its own keeps no such tie


def test_slots_have_distinct_stable_executor_ids() -> None:
    assert child_ids("serve-h", 3) == ["serve-h-w1", "serve-h-w2", "serve-h-w3"]
    assert all(len(i) <= 64 for i in child_ids("s" * 64, 12))
    assert worker_argv("serve-h-w1", ["--no-box"])[-4:] == [
        "worker", "--executor-id", "serve-h-w1", "--no-box"]  # fmt: skip


def test_a_child_dying_young_waits_longer_each_time() -> None:
    assert next_pause(0.0, YOUNG_S + 1) == FIRST_RESTART_S
    assert next_pause(FIRST_RESTART_S, 0.1) == 2 * FIRST_RESTART_S
    assert next_pause(MAX_RESTART_S, 0.1) == MAX_RESTART_S


def test_the_supervisor_starts_a_dead_child_again_and_stops_the_live_ones() -> None:
    now = [0.0]
    slots = [Slot("a-w1", [sys.executable, "-c", "raise SystemExit(1)"]),
             Slot("a-w2", [sys.executable, "-c", "import time; time.sleep(60)"])]  # fmt: skip
    sup = Supervisor(slots, clock=lambda: now[0])
    for slot in slots:
        sup._start(slot)
    assert slots[0].proc is not None
    slots[0].proc.wait()
    sup.check()  # noted dead; its pause is not over
    assert slots[0].proc is None and slots[0].restarts == 1
    now[0] += FIRST_RESTART_S
    sup.check()
    assert slots[0].proc is not None and len(slots[0].history) == 2
    live = slots[1].proc
    assert live is not None and live.poll() is None
    sup.stop()
    assert live.returncode is not None  # SIGTERM ended it
    slots[0].proc.wait()


def test_dbos_private_recovery_call_keeps_its_shape() -> None:
    """`runtime.recover_executor` relies on DBOS._recover_pending_workflows(executor_ids) ->
    list of handles, which calls _sys_db.reenqueue_for_recovery(workflow_id, executor_ids, queue)
    (DBOS 3.4, dbos/_recovery.py); a DBOS upgrade that changes either breaks here first."""
    from dbos import DBOS
    from dbos._sys_db import SystemDatabase

    params = list(inspect.signature(DBOS._recover_pending_workflows).parameters)
    assert params == ["executor_ids"]
    inner = list(inspect.signature(SystemDatabase.reenqueue_for_recovery).parameters)
    assert inner == ["self", "workflow_id", "executor_ids", "recovery_queue_name"]
