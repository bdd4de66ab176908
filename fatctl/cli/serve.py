"""`fatctl serve`: the HTTP API and the workflow engine (DBOS), in one process or beside workers.

By default the workflows run in this process, on fatctl's own database (the SQLite file by
default): stopping the server leaves unfinished ones PENDING, and the next start with the same
executor id (by default the host's name) recovers them, whatever fatctl version it runs. With
`--workers N` (N > 0) this process only serves, enqueues and reads: N `fatctl worker` children
(`service.workers`) dequeue and run the workflows and schedules, so a slow or crashing flow
never stalls the API, and N says how many executors work. Every service process beats and
takes over dead ones (`service.reaper`) and shares the clouds' rate budgets in the database.
`--no-box` is the API-only mode of the sandbox (provisioning stops after DNS and infra).
"""

from __future__ import annotations

import os
import signal
import socket
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import EngineOpt

if TYPE_CHECKING:
    from fatctl.service.context import Runtime

DEFAULT_PORT = 8077
# Exit status of a service process another one took over while it still ran (service.reaper):
# non-zero, so systemd's Restart=on-failure (or serve's supervisor, for a child) starts it again.
TAKEN_OVER_EXIT = 3

NoBoxOpt = Annotated[
    bool, typer.Option("--no-box", help="Provision up to infra+DNS only (API-only sandbox).")
]


def executor_id_option(default: str, advice: str) -> typer.models.OptionInfo:
    """`--executor-id`: the process's name in DBOS's workflow tables."""
    return typer.Option(
        "--executor-id",
        help=f"This process's name in the workflow tables (default: {default}); {advice}",
    )


def taken_over() -> NoReturn:
    """Another process took this one's workflows and leases: stop before the next step, at
    once (no cleanup that could touch what the other one now runs)."""
    os._exit(TAKEN_OVER_EXIT)


def service_runtime(engine: str | None, no_box: bool, executor_id: str) -> Runtime:
    """The runtime of a service process, every setting it depends on checked first: a bad one
    is refused now (one line, exit 2), not in each workflow."""
    from fatctl.infra import make_engine
    from fatctl.monitoring.notify_channels import check_ready as notify_ready
    from fatctl.service.context import Runtime
    from fatctl.service.reaper import pace_from
    from fatctl.service.schedules import configured
    from fatctl.service.webhooks.target import check_ready
    from fatctl.services.repair.ladder import policies_from
    from fatctl.validation import executor_name

    named = executor_name(executor_id)
    c = ctx()
    s = c.settings
    make_engine(s, engine)  # a bad engine or a missing setting is refused now, not per workflow
    configured(s)  # so is a schedule's bad cron (FATCTL_SCHEDULE_*), before the database
    policies_from(s)  # and a bad repair ladder (FATCTL_REPAIR_*), which each sweep reads
    notify_ready(s)  # and bad FATCTL_NOTIFY_* settings, which each sweep's notices read
    pace = pace_from(s)  # and bad FATCTL_WORKER_* timings
    check_ready(c.engine, c.keyring, s)  # and a bad FATCTL_WEBHOOK_URL, or one with no secret
    return Runtime(c.engine, c.keyring, s, lambda: make_engine(s, engine), skip_box=no_box,
                   schedules=True, executor_id=named, workers=pace,
                   on_lost=taken_over)  # fmt: skip


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = DEFAULT_PORT,
    engine: EngineOpt = None,
    no_box: NoBoxOpt = False,
    executor_id: Annotated[
        str | None,
        executor_id_option(
            "serve-<hostname>",
            "keep it across restarts, e.g. in a container, so unfinished workflows resume.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Run the workflows in N `fatctl worker` child processes (ids <executor-id>-wI, "
            "restarted when they die) instead of in this one; 0: here.",
        ),
    ] = 0,
) -> None:
    """Serve the HTTP API (/v1) and run its workflows until stopped."""
    import uvicorn

    from fatctl.service.api.app import create_app
    from fatctl.service.workers import Slot, Supervisor, child_ids, worker_argv

    runtime = service_runtime(engine, no_box, executor_id or f"serve-{socket.gethostname()}")
    # With workers the workflows and schedules are theirs: this process enqueues and reads.
    runtime.listen = runtime.schedules = workers == 0
    options = [*(["--engine", engine] if engine else []), *(["--no-box"] if no_box else [])]
    slots = [Slot(i, worker_argv(i, options)) for i in child_ids(runtime.executor_id, workers)]
    # uvicorn stops gracefully on SIGTERM and then raises the signal again for the handler that
    # was there before it. This one lets that return, so a server stopped the way a service
    # manager stops it exits 0 (Ctrl-C keeps Python's own handler: interrupted, exit 130).
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    supervisor = Supervisor(slots).start()
    try:
        uvicorn.run(create_app(runtime), host=host, port=port, log_level="warning")
    finally:
        supervisor.stop()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
