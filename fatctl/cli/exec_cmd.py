"""`fatctl exec [--all | --agents a,b | --label k=v] [--parallel N] -- CMD`: fleet fan-out.

Output lines stream with the agent's name as prefix; a summary table (agent, host, exit,
duration, error) follows, or one JSON document with every host's result under `--json`.
Exit 0 only when every selected host ran the command and it exited 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.options import (
    AgentsOpt,
    AllReachableOpt,
    JsonOpt,
    LabelOpt,
    ParallelOpt,
    selected_targets,
)
from fatctl.cli.output import Output

if TYPE_CHECKING:
    from fatctl.remote.runner import Result


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

    targets = selected_targets(agents, all_agents, label)
    out = Output(json_out)
    if not targets:
        out.message("no agents selected")
        return
    width = max(len(t.name) for t in targets)
    line = command[0] if len(command) == 1 else run(command)
    results = fan_out(
        targets,
        line,
        parallel=parallel,
        timeout=timeout,
        on_line=None if json_out else prefix_printer(width),
    )
    _summary(out, results)


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
    if not all(r.ok for r in results):
        raise typer.Exit(1)
