"""`fatctl worker`: a process that runs the service's workflows and schedules, serving no HTTP.

Any number of them, on any machines, share the queues of one PostgreSQL database (or, for the
embedded default, one worker beside `fatctl serve` on the SQLite file). The default executor id
is `worker-<hostname>-<pid>`: unique per process, which matters more than stable (two live
processes under one id would each recover the other's running workflows at launch); a worker
that dies is taken over by a live one after FATCTL_WORKER_DEAD_AFTER_S (`service.reaper`).
`fatctl serve --workers N` gives its children stable slot ids instead, one process per slot.
SIGTERM stops it (exit 0); unfinished workflows stay PENDING for the next owner of its id or
for the reaper.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Annotated

from fatctl.cli.options import EngineOpt
from fatctl.cli.serve import NoBoxOpt, executor_id_option, service_runtime


def worker(
    engine: EngineOpt = None,
    no_box: NoBoxOpt = False,
    executor_id: Annotated[
        str | None,
        executor_id_option("worker-<hostname>-<pid>", "never the id of another live process."),
    ] = None,
) -> None:
    """Run the service's workflows and schedules (no HTTP) until stopped."""
    from fatctl.service.runtime import running
    from fatctl.service.workers import die_with_parent

    default = f"worker-{socket.gethostname()}-{os.getpid()}"
    runtime = service_runtime(engine, no_box, executor_id or default)  # exits 3 if taken over
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stopped.set())
    if die_with_parent():
        return  # a server's child whose server is gone: the next server starts its own
    with running(runtime):
        stopped.wait()
