"""DBOS on fatctl's own database, launched and shut down cleanly inside one process.

DBOS is a process-global singleton (`DBOS(config=...)`, `DBOS.launch()`, `DBOS.destroy()`), and
its workflows cannot take fatctl's engine, key ring or cloud engine as inputs (inputs are
stored). So the process's `Runtime` (what the workflows' steps need) is held here while DBOS
runs, and cleared when it stops; `running()` is the one way to have both, and leaves neither
behind (no thread, no instance), which the tests rely on between cases.

The system tables go into the same database as fatctl's: the SQLite file of the embedded
default (DBOS's tables `workflow_status`, `operation_outputs`, `queues`, ... clash with none of
fatctl's; both sides use WAL with a 30 s busy timeout), or schema `dbos` of the PostgreSQL
database. The executor id is stable per host, so a restarted `fatctl serve` recovers the
workflows it left PENDING (DBOS does that at launch for its own executor id).

With `Runtime.workers` set (several processes on one database: `fatctl worker`, `fatctl serve
--workers N`) the process also beats and takes over dead executors (`service.reaper`), and its
cloud clients take their tokens from the rate budgets in the database
(`pacing.shared_budget`); `Runtime.listen` False launches DBOS without dequeuing (the API
process beside its workers only enqueues and reads).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fatctl.pacing.budget import share_budgets
from fatctl.service import context
from fatctl.service.context import (
    AGENT_PARTITION_CONCURRENCY,
    AGENTS_QUEUE,
    AGENTS_WORKER_CONCURRENCY,
    WORKFLOW_VERSION,
    Runtime,
)
from fatctl.state.db import make_engine
from fatctl.state.rawdb import dialect


def system_database_url(database_url: str) -> str:
    """DBOS's URL for fatctl's database: the same SQLite file, or the same PostgreSQL database
    (DBOS picks the psycopg driver itself and keeps to its own schema)."""
    if dialect(database_url) == "sqlite":
        return database_url
    scheme, rest = database_url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else database_url


def recover_executor(executor_id: str) -> int:
    """Re-enqueue the PENDING workflows of another (dead) executor; how many.

    DBOS open source has no public call for this (Conductor does it); `_recover_pending_workflows`
    is the narrowest one there is, the one DBOS's own admin server calls for `/dbos-workflow-
    recovery`. tests/unit/service/test_dbos_recovery_api.py breaks if its signature changes."""
    from dbos import DBOS

    return len(DBOS._recover_pending_workflows([executor_id]))


@contextmanager
def _with_workers(runtime: Runtime) -> Iterator[None]:
    """Heartbeat, reaper and the shared rate budgets, for the life of the block."""
    from fatctl.pacing.shared_budget import BudgetStore, SharedBudget
    from fatctl.service.reaper import Heartbeat, database_now

    pace = runtime.workers
    if pace is None:
        yield
        return
    if runtime.on_lost is None:
        # Taken over and still running would run its workflows twice, with no lease guard.
        raise ValueError("a service runtime with workers needs on_lost (stop the process)")
    store = BudgetStore(runtime.db)
    share_budgets(lambda api: SharedBudget(api, store, batch=pace.budget_batch))
    # Its own connection pool: a beat must never queue behind the workflows' connections, or a
    # busy worker would look dead to the others.
    beats = make_engine(runtime.settings.database_url)
    heartbeat = Heartbeat(beats, runtime.executor_id, pace, recover_executor,
                          runtime.on_lost, lambda: database_now(beats)).start()  # fmt: skip
    try:
        yield
    finally:
        heartbeat.stop()
        beats.dispose()
        share_budgets(None)


@contextmanager
def running(runtime: Runtime) -> Iterator[Runtime]:
    """Launch DBOS for `runtime` (recovering this executor's unfinished workflows), register
    the queues, and shut everything down at the end of the block."""
    from dbos import DBOS, DBOSConfig
    from dbos._serialization import DBOSPortableJSONSerializer

    # The workflows must be registered before launch: importing the module declares them.
    from fatctl.service import schedules, workflows  # noqa: F401

    config = DBOSConfig(
        name="fatctl",
        system_database_url=system_database_url(runtime.settings.database_url),
        # DBOS recovers and dequeues only rows of its own application version: fatctl's release
        # would strand every unfinished workflow at an upgrade. The workflows' own version is
        # bumped only when their inputs or steps change shape.
        application_version=WORKFLOW_VERSION,
        executor_id=runtime.executor_id,
        serializer=DBOSPortableJSONSerializer(),  # stored inputs stay readable JSON
        log_level="WARNING",
    )
    context.install(runtime)
    try:
        # Before launch: the workflows DBOS recovers at launch pace through the shared budgets.
        with _with_workers(runtime):
            DBOS(config=config)
            if not runtime.listen:
                DBOS.listen_queues([])  # enqueue and read only; the workers dequeue
            DBOS.launch()
            DBOS.register_queue(
                AGENTS_QUEUE,
                partition_concurrency=AGENT_PARTITION_CONCURRENCY,
                worker_concurrency=AGENTS_WORKER_CONCURRENCY,
                polling_interval_sec=runtime.queue_poll_s,
            )
            if runtime.schedules:
                schedules.register(runtime.settings, runtime.clock(), runtime.queue_poll_s)
            yield runtime
    finally:
        # The registry stays: it holds the decorated workflows, declared once per process.
        DBOS.destroy(workflow_completion_timeout_sec=0)
        context.clear()
