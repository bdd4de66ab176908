"""`fatctl channels add|list|remove|login`: where the agent answers (Telegram, Slack, WhatsApp).

Credentials come on stdin only (Telegram: the bot token; Slack: the bot token, then the app
token, one per line; WhatsApp: none, it pairs by QR with `channels login`). They are sealed
like every secret and reach the box only in its `gateway.env`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import AgentArg, DryRunOpt, JsonOpt, agent_arg
from fatctl.cli.output import Output
from fatctl.cli.serving_io import push_and_show, stdin_lines

app = typer.Typer(help="Messaging channels an agent answers on.", no_args_is_help=True)
KindArg = Annotated[str, typer.Argument(help="telegram, slack or whatsapp.")]


@app.command("add")
def add(
    agent: AgentArg, kind: KindArg, dry_run: DryRunOpt = False, json_out: JsonOpt = False
) -> None:
    """Add (or re-key) a channel; its credentials are read from stdin, one per line."""
    from fatctl.services.serving.changes import add_channel
    from fatctl.serving import CHANNEL_CREDENTIALS, channel_kind

    chosen = channel_kind(kind)
    count = len(CHANNEL_CREDENTIALS[chosen])
    values = stdin_lines(f"{chosen.value} credentials", count) if count else []
    push_and_show(agent, lambda s, a: add_channel(s, ctx().keyring, a, chosen, values), dry_run,
                  json_out, f"{chosen.value} on {agent}")  # fmt: skip


@app.command("remove")
def remove(
    agent: AgentArg, kind: KindArg, dry_run: DryRunOpt = False, json_out: JsonOpt = False
) -> None:
    """Stop answering on a channel and forget its credentials."""
    from fatctl.services.serving.changes import remove_channel
    from fatctl.serving import channel_kind

    chosen = channel_kind(kind)
    push_and_show(agent, lambda s, a: remove_channel(s, a, chosen), dry_run, json_out,
                  f"{chosen.value} removed from {agent}")  # fmt: skip


@app.command("list")
def list_(agent: AgentArg, json_out: JsonOpt = False) -> None:
    """The agent's channels and the senders each one admits (never a token)."""
    from fatctl.serving import CHANNEL_SENDERS, ChannelKind
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    agent = agent_arg(agent) or ""
    with session_scope(ctx().engine) as session:
        row = repo.get_agent(session, agent)
        senders = repo.senders(session, row)
        rows = []
        for channel in repo.channels(session, row):
            wanted = CHANNEL_SENDERS[ChannelKind(channel.kind)].value
            allowed = [s.value for s in senders if s.kind == wanted]
            rows.append({"kind": channel.kind, "allowed": ", ".join(allowed) or "(nobody)",
                         "added": channel.created_at})  # fmt: skip
    Output(json_out).table(rows, ("kind", "allowed", "added"), title=f"channels of {agent}")
