"""`fatctl senders add|list|remove`: who may talk to an agent. Everyone else's message never
reaches the model: each channel is rendered with `dmPolicy: allowlist` over its senders."""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import AgentArg, DryRunOpt, JsonOpt, agent_arg
from fatctl.cli.output import Output
from fatctl.cli.serving_io import push_and_show

app = typer.Typer(help="Who may talk to an agent (its allowlist).", no_args_is_help=True)
SenderArg = Annotated[
    str, typer.Argument(help="E-mail address, Telegram user id, Slack member id or +phone.")
]
KindOpt = Annotated[
    str | None, typer.Option("--kind", help="email, telegram, slack or phone (default: by shape).")
]


@app.command("add")
def add(
    agent: AgentArg, sender: SenderArg, kind: KindOpt = None, dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:  # fmt: skip
    """Allow a sender; the running box's channels admit them at once."""
    from fatctl.services.serving.changes import add_sender

    push_and_show(agent, lambda s, a: add_sender(s, a, sender, kind), dry_run, json_out,
                  f"sender added to {agent}")  # fmt: skip


@app.command("remove")
def remove(
    agent: AgentArg, sender: SenderArg, kind: KindOpt = None, dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:  # fmt: skip
    """Stop admitting a sender."""
    from fatctl.services.serving.changes import remove_sender

    push_and_show(agent, lambda s, a: remove_sender(s, a, sender, kind), dry_run, json_out,
                  f"sender removed from {agent}")  # fmt: skip


@app.command("list")
def list_(agent: AgentArg, json_out: JsonOpt = False) -> None:
    """The agent's allowed senders."""
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    agent = agent_arg(agent) or ""
    with session_scope(ctx().engine) as session:
        row = repo.get_agent(session, agent)
        rows = [{"kind": s.kind, "sender": s.value, "added": s.created_at}
                for s in repo.senders(session, row)]  # fmt: skip
    Output(json_out).table(rows, ("kind", "sender", "added"), title=f"senders of {agent}")
