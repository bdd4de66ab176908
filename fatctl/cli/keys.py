"""`fatctl keys add|list|revoke`: operator keys (fleet-wide) and customer keys (per agent)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import AgentScopeOpt, JsonOpt, agent_arg
from fatctl.cli.output import Output

app = typer.Typer(help="SSH public keys allowed onto boxes.", no_args_is_help=True)
NoPushOpt = Annotated[
    bool, typer.Option("--no-push", help="Only record it; push later with `keys push`.")
]


def read_public_key(file: Path | None, key: str | None) -> str:
    from fatctl.cli.bounded_input import read_file
    from fatctl.errors import BadInput
    from fatctl.validation import MAX_PUBLIC_KEY_BYTES

    if (file is None) == (key is None):
        raise BadInput("give exactly one of --file PATH (or - for stdin) and --key 'ssh-...'")
    if key is not None:
        return key
    assert file is not None
    return read_file(file, "public key", MAX_PUBLIC_KEY_BYTES)


@app.command("add")
def add(
    agent: Annotated[
        str | None, typer.Option("--agent", help="Customer key for this agent.")
    ] = None,
    operator: Annotated[
        bool, typer.Option("--operator", help="A fleet-wide operator key.")
    ] = False,
    file: Annotated[
        Path | None, typer.Option("--file", help="A .pub file, or - for stdin.")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="The public key text.")] = None,
    label: Annotated[str, typer.Option("--label")] = "",
    no_push: NoPushOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Allow a public key: `--agent NAME` for a customer, `--operator` for the fleet."""
    from fatctl.domain import KeyRole
    from fatctl.errors import BadInput
    from fatctl.services.agents.keys import add_key

    agent = agent_arg(agent)
    if operator == bool(agent):
        raise BadInput("say whose key it is: --agent NAME or --operator")
    text = read_public_key(file, key)
    role = KeyRole.OPERATOR if operator else KeyRole.CUSTOMER
    added = add_key(
        ctx().engine, role=role, public_key=text, label=label, agent=agent, actor=ctx().actor
    )
    Output(json_out).record(
        {
            "fingerprint": added.fingerprint,
            "role": added.role,
            "agent": agent or "",
            "label": added.label,
            "hetzner_id": _upload_to_hetzner(added.fingerprint) or "",
        },
        title="key added",
    )
    if agent and not no_push:
        from fatctl.cli.keys_ssh import push_after_change

        push_after_change(agent, Output(json_out))


def _upload_to_hetzner(fingerprint: str) -> str | None:
    """Fleet keys go to Hetzner when added, so provisions never pay for the upload. A cloud
    failure leaves the key recorded (one warning line): the next provision uploads it."""
    from fatctl.errors import FatctlError
    from fatctl.services.access.fleet_key_ids import upload_added

    try:
        return upload_added(ctx().settings, ctx().engine, fingerprint)
    except FatctlError as exc:
        sys.stderr.write(f"fatctl: warning: key recorded, not at Hetzner yet: {exc.one_line()}\n")
        return None


@app.command("list")
def list_(
    agent: AgentScopeOpt = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List keys (operator keys and, with --agent, that agent's customer keys)."""
    from fatctl.services.agents.keys import list_keys

    agent = agent_arg(agent)
    rows = [
        {
            "fingerprint": k.fingerprint,
            "role": k.role,
            "label": k.label,
            "added": k.created_at,
            "revoked": k.revoked_at or "",
        }
        for k in list_keys(ctx().engine, agent=agent, include_revoked=revoked)
    ]
    Output(json_out).table(rows, ("fingerprint", "role", "label", "added", "revoked"), title="keys")


@app.command("revoke")
def revoke(
    fingerprint: Annotated[str, typer.Argument(help="SHA256:... as shown by `keys list`.")],
    agent: AgentScopeOpt = None,
    no_push: NoPushOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Revoke a key (kept in the audit trail)."""
    import re

    from fatctl.errors import BadInput
    from fatctl.services.agents.keys import revoke_key

    agent = agent_arg(agent)
    if not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fingerprint):
        raise BadInput(
            f"{fingerprint[:60]!r} is not a key fingerprint (SHA256:... from `keys list`)"
        )
    revoke_key(ctx().engine, fingerprint=fingerprint, agent=agent, actor=ctx().actor)
    Output(json_out).record({"fingerprint": fingerprint, "revoked": True}, title="key revoked")
    if agent and not no_push:
        from fatctl.cli.keys_ssh import push_after_change

        push_after_change(agent, Output(json_out))
