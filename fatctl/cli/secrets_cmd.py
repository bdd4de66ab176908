"""`fatctl secrets set|list|rotate-master|generate-master-key`.

Values are read from stdin only: a value on the command line would end up in shell history
and in `ps` output.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fatctl.cli.context import confirm, ctx
from fatctl.cli.options import AgentScopeOpt, JsonOpt, YesOpt, agent_arg
from fatctl.cli.output import Output

app = typer.Typer(help="Encrypted secrets (values are never shown).", no_args_is_help=True)


def _agent_pk(session, agent: str | None) -> int | None:
    from fatctl.state import repo

    return repo.get_agent(session, agent).id if agent else None


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="Secret name, e.g. anthropic-api-key.")],
    agent: AgentScopeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Store a secret read from stdin (e.g. `pass show x | fatctl secrets set x --agent a`)."""
    import re

    from fatctl.cli.bounded_input import read_stdin
    from fatctl.errors import BadInput
    from fatctl.sensitive import Sensitive
    from fatctl.serving import MAX_SECRET_BYTES
    from fatctl.state import repo, secret_store
    from fatctl.state.db import session_scope

    agent = agent_arg(agent)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._:-]{0,99}", name):
        raise BadInput(f"secret name {name[:40]!r} must be lowercase letters, digits, . _ : -")
    if sys.stdin.isatty():
        raise BadInput("pipe the secret value on stdin; it is never taken from arguments")
    value = Sensitive(read_stdin("secret value", MAX_SECRET_BYTES).rstrip("\r\n"))
    if not value:
        raise BadInput("the secret value read from stdin is empty")
    ring, engine = ctx().keyring, ctx().engine
    with session_scope(engine) as session:
        secret_store.put(session, ring, agent_pk=_agent_pk(session, agent), name=name, value=value)
        repo.audit(
            session,
            actor=ctx().actor,
            action="secret.set",
            target=agent or "global",
            detail={"name": name},
        )
    Output(json_out).record(
        {"name": name, "agent": agent or "", "stored": True}, title="secret stored"
    )


@app.command("list")
def list_(
    agent: AgentScopeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Secret names, master key ids and expiry — never values."""
    from fatctl.state import secret_store
    from fatctl.state.db import session_scope

    agent = agent_arg(agent)
    with session_scope(ctx().engine) as session:
        rows = [
            {
                "name": s.name,
                "key_id": s.key_id,
                "updated": s.updated_at,
                "expires": s.expires_at or "",
            }
            for s in secret_store.names(session, agent_pk=_agent_pk(session, agent))
        ]
    Output(json_out).table(rows, ("name", "key_id", "updated", "expires"), title="secrets")


@app.command("rotate-master")
def rotate_master(yes: YesOpt = False, json_out: JsonOpt = False) -> None:
    """Re-wrap every data key under FATCTL_MASTER_KEY (old keys in FATCTL_PREVIOUS_MASTER_KEYS)."""
    from fatctl.state import repo, secret_store
    from fatctl.state.db import session_scope

    ring, engine = ctx().keyring, ctx().engine
    confirm(f"Re-wrap all secrets under master key {ring.current.key_id}?", yes)
    with session_scope(engine) as session:
        moved, current = secret_store.rotate_master(session, ring)
        repo.audit(
            session,
            actor=ctx().actor,
            action="secret.rotate-master",
            target="global",
            detail={"key_id": ring.current.key_id, "rewrapped": moved},
        )
    Output(json_out).record(
        {"key_id": ring.current.key_id, "rewrapped": moved, "already_current": current},
        title="master key rotated",
    )


@app.command("generate-master-key")
def generate_master_key(json_out: JsonOpt = False) -> None:
    """Print a fresh random master key (for FATCTL_MASTER_KEY); store it in your secret manager."""
    from fatctl.secrets import generate_master_key as gen

    key = gen()  # this command's whole purpose is to show it, once, to its caller
    if json_out:
        Output(True).data({"master_key": key})
    else:
        sys.stdout.write(key + "\n")
