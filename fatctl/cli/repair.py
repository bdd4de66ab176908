"""`fatctl repair list|hold|release`: the automatic repair ladder, seen and held by operators.

`fatctl serve` repairs on its own (after each health sweep); these commands only show what it
did and would do, and keep it off a box (`hold`) or let it back on (`release`, which also lifts
a page: the ladder then starts afresh).
"""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import AgentArg, JsonOpt, agent_arg
from fatctl.cli.output import Output

app = typer.Typer(help="Automatic repair: what it did, holds and pages.", no_args_is_help=True)

ReasonOpt = Annotated[
    str, typer.Option("--reason", help="Why (kept in the hold and the audit; one line).")
]


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Agents held, paged, failing or repaired, and what the policy would do now."""
    from fatctl.clock import wall_clock
    from fatctl.services.repair.ladder import policies_from
    from fatctl.services.repair.listing import COLUMNS, rows

    c = ctx()
    found = rows(c.engine, policies_from(c.settings), wall_clock())
    Output(json_out).table(found, COLUMNS, title="repair")


@app.command("hold")
def hold(agent: AgentArg, reason: ReasonOpt = "", json_out: JsonOpt = False) -> None:
    """Keep automatic repair off AGENT's box until `fatctl repair release AGENT`."""
    from fatctl.clock import wall_clock
    from fatctl.services.repair.records import hold as hold_agent

    name = agent_arg(agent) or agent
    c = ctx()
    new = hold_agent(c.engine, name, c.actor, reason, wall_clock())
    Output(json_out).record({"agent": name, "hold": "operator", "new": new},
                            title="repair held" if new else "already held")  # fmt: skip


@app.command("release")
def release(agent: AgentArg, json_out: JsonOpt = False) -> None:
    """Let automatic repair work on AGENT again (lifts a hold or a page; the ladder restarts)."""
    from fatctl.clock import wall_clock
    from fatctl.services.repair.records import release as release_agent

    name = agent_arg(agent) or agent
    c = ctx()
    kind = release_agent(c.engine, name, c.actor, wall_clock())
    Output(json_out).record({"agent": name, "released": kind}, title="repair released")
