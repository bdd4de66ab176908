"""`fatctl serve`: the HTTP API and the workflow engine (DBOS) in one process.

The workflows run in this process, on fatctl's own database (the SQLite file by default):
stopping the server leaves unfinished ones PENDING, and the next start with the same executor
id (by default the host's name) recovers them, whatever fatctl version it runs. `--no-box` is
the API-only mode of the sandbox (provisioning stops after DNS and infra).
"""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import EngineOpt

DEFAULT_PORT = 8077


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = DEFAULT_PORT,
    engine: EngineOpt = None,
    no_box: Annotated[
        bool, typer.Option("--no-box", help="Provision up to infra+DNS only (API-only sandbox).")
    ] = False,
    executor_id: Annotated[
        str | None,
        typer.Option(
            "--executor-id",
            help="This server's name in the workflow tables (default: serve-<hostname>); "
            "keep it across restarts, e.g. in a container, so unfinished workflows resume.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (/v1) and run its workflows until stopped."""
    import uvicorn

    from fatctl.infra import make_engine
    from fatctl.monitoring.notify_channels import check_ready as notify_ready
    from fatctl.service.api.app import create_app
    from fatctl.service.context import Runtime
    from fatctl.service.schedules import configured
    from fatctl.service.webhooks.target import check_ready
    from fatctl.services.repair.ladder import policies_from
    from fatctl.validation import executor_name

    named = executor_name(executor_id) if executor_id is not None else None
    c = ctx()
    s = c.settings
    make_engine(s, engine)  # a bad engine or a missing setting is refused now, not per workflow
    configured(s)  # so is a schedule's bad cron (FATCTL_SCHEDULE_*), before the database
    policies_from(s)  # and a bad repair ladder (FATCTL_REPAIR_*), which each sweep reads
    notify_ready(s)  # and bad FATCTL_NOTIFY_* settings, which each sweep's notices read
    check_ready(c.engine, c.keyring, s)  # and a bad FATCTL_WEBHOOK_URL, or one with no secret
    runtime = Runtime(c.engine, c.keyring, s, lambda: make_engine(s, engine), skip_box=no_box,
                      schedules=True)  # fmt: skip
    if named is not None:
        runtime.executor_id = named
    # uvicorn stops gracefully on SIGTERM and then raises the signal again for the handler that
    # was there before it. This one lets that return, so a server stopped the way a service
    # manager stops it exits 0 (Ctrl-C keeps Python's own handler: interrupted, exit 130).
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    uvicorn.run(create_app(runtime), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
