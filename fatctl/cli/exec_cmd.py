"""`fatctl exec [--all | --agents a,b | --label k=v] [--parallel N] -- CMD`: fleet fan-out.

Output lines stream with the agent's name as prefix; a summary table (agent, host, exit,
duration, error) follows, or one JSON document with every host's result under `--json`.
Exit 0 only when every selected host ran the command and it exited 0; otherwise the run ends
with one line on stderr naming the agents that failed. Each host's run is an `exec` audit
event (the command line and its exit status).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import (
    AgentsOpt,
    AllReachableOpt,
    JsonOpt,
    LabelOpt,
    ParallelOpt,
    selected_targets,
)
from fatctl.cli.output import Output, exit_if_failed

if TYPE_CHECKING:
    from fatctl.remote.runner import Result
    from fatctl.services.common.audit import RemoteRun


def exec_(
    command: Annotated[list[str], typer.Argument(help="The command, after --.")],
    all_agents: AllReachableOpt = False,
    agents: AgentsOpt = "",
    label: LabelOpt = None,
    parallel: ParallelOpt = 10,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.1, help="Per-host command timeout (s).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run one command on many boxes at once."""
    from fatctl.remote.commands.shell import run
    from fatctl.remote.fanout import fan_out, prefix_printer
    from fatctl.services.common.audit import RemoteRun

    targets = selected_targets(agents, all_agents, label)
    out = Output(json_out)
    if not targets:
        out.message("no agents selected")
        return
    width = max(len(t.name) for t in targets)
    line = command[0] if len(command) == 1 else run(command)
    try:
        results = fan_out(
            targets,
            line,
            parallel=parallel,
            timeout=timeout,
            on_line=None if json_out else prefix_printer(width),
        )
    except KeyboardInterrupt:
        # The commands may have run on some boxes already: the trail must say they were sent.
        _audit([RemoteRun(t.name, line, None, "interrupted") for t in targets])
        raise
    _audit([RemoteRun(r.name, line, r.exit_code, r.error) for r in results])
    _summary(out, results)


def _audit(runs: list[RemoteRun]) -> None:
    from fatctl.services.common.audit import audit_runs

    audit_runs(ctx().engine, ctx().actor, "exec", runs)


def _summary(out: Output, results: list[Result]) -> None:
    """The per-host table (or JSON); exit 1 unless every host ran the command with status 0."""
    rows = [
        {**r.as_dict(), "duration": f"{r.duration_s:.2f}s", "error": r.error or ""} for r in results
    ]
    out.table(
        rows,
        ("agent", "host", "exit", "duration", "error"),
        title="exec",
        json_payload=[r.as_dict() for r in results],
    )
    exit_if_failed([r.name for r in results if not r.ok], len(results))
