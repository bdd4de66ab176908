"""`fatctl jobs list|show`: `fatctl serve`'s schedules and workflows, read from the database.

Nothing here launches the workflow engine: the tables are read through DBOS's client, so the
command is safe beside running servers (it takes no work from them).
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

app = typer.Typer(help="Schedules and workflows of `fatctl serve` (read-only).",
                  no_args_is_help=True)  # fmt: skip

SCHEDULE_COLUMNS = ("name", "cron", "status", "next_run", "last_run", "last_result")
WORKFLOW_COLUMNS = ("id", "name", "status", "agent", "started", "error")
# DBOS ids here are fatctl's own (provision-<name>-<n>, sched-<name>-<time>, ...) or UUIDs.
WORKFLOW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}")


@app.command("list")
def list_(
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=500, help="How many recent workflows to show.")
    ] = 20,
    json_out: JsonOpt = False,
) -> None:
    """The schedules (cron, next and last run, last result) and the most recent workflows."""
    from fatctl.clock import wall_clock
    from fatctl.service.jobs import overview

    found = overview(ctx().settings, wall_clock(), limit)
    out = Output(json_out)
    if json_out:
        out.data(found)
        return
    out.table(found["schedules"], SCHEDULE_COLUMNS, title="schedules")
    out.table(found["workflows"], WORKFLOW_COLUMNS, title="recent workflows")


@app.command("show")
def show(
    workflow_id: Annotated[str, typer.Argument(help="The workflow's id (from `jobs list`).")],
    json_out: JsonOpt = False,
) -> None:
    """One workflow: its status, agent, times, error, output and steps."""
    from fatctl.errors import BadInput, NotFound
    from fatctl.service.jobs import detail

    if not WORKFLOW_ID.fullmatch(workflow_id):
        raise BadInput(f"not a workflow id: {workflow_id[:60]!r} (letters, digits, . _ : + -)")
    found = detail(ctx().settings, workflow_id)
    if found is None:
        raise NotFound(f"no workflow {workflow_id}")
    out = Output(json_out)
    if json_out:
        out.data(found)
        return
    steps = found.pop("steps")
    out.record(found, title=f"workflow {workflow_id}")
    out.table(steps, ("step", "name", "error"), title="steps")
