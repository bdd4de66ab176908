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
from fatctl.cli.output import Output, echo_stream
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


@app.command("login")
def login(agent: AgentArg, kind: KindArg, json_out: JsonOpt = False) -> None:
    """Pair a channel that logs in by QR (WhatsApp): OpenClaw's own login runs on the box, as
    the gateway's user, over the pinned SSH session; the QR shows in this terminal."""
    import sys

    from fatctl.errors import BadInput
    from fatctl.remote.commands.services import openclaw_cli
    from fatctl.remote.commands.shell import maybe_sudo
    from fatctl.remote.runner import connect
    from fatctl.services.common.audit import audit_change
    from fatctl.services.common.targets import agent_target
    from fatctl.serving import ChannelKind, channel_kind
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    agent = agent_arg(agent) or ""
    chosen = channel_kind(kind)
    if chosen != ChannelKind.WHATSAPP:
        raise BadInput(f"{chosen.value} logs in with its tokens (`channels add`), not by QR")
    c = ctx()
    with session_scope(c.engine) as session:
        if not any(
            ch.kind == chosen.value for ch in repo.channels(session, repo.get_agent(session, agent))
        ):
            raise BadInput(f"add the channel first: `fatctl channels add {agent} whatsapp`")
    target = agent_target(c.engine, c.settings, agent)
    command = maybe_sudo(openclaw_cli(["channels", "login", "--channel", chosen.value]),
                         needed=target.user != "root")  # fmt: skip
    conn = connect(target)
    try:
        if sys.stdin.isatty() and sys.stdout.isatty():
            from fatctl.remote.runner_interactive import interactive_shell

            code = interactive_shell(conn, command)
        else:  # a pipeline: the QR is text all the same; pass it through as it comes
            result = conn.run(command, on_output=echo_stream, raw=True, timeout=600)
            code = result.exit_code if result.exit_code is not None else 1
    finally:
        conn.close()
    outcome = "ok" if code == 0 else "failed"
    audit_change(c.engine, c.actor, "channel.login", agent, outcome, {"kind": chosen.value})
    if json_out:
        Output(True).data({"agent": agent, "kind": chosen.value, "exit_code": code})
    raise typer.Exit(code)
