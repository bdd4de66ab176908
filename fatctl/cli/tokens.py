"""`fatctl tokens create|list|revoke`: bearer tokens of `fatctl serve`'s API.

A token is printed once, by `create`, and never again: only its SHA-256 is stored.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

app = typer.Typer(help="API tokens of `fatctl serve` (shown once, stored hashed).",
                  no_args_is_help=True)  # fmt: skip

COLUMNS = ("name", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The token's name (it appears in the audit trail).")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="agents:read, agents:write, metrics:read or fleet:admin (repeatable).",
        ),
    ],
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime like 90d, 12h or 30m.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from fatctl.service.tokens import create_token

    c, out = ctx(), Output(json_out)
    token, info = create_token(c.engine, name, scope, expires_in, c.actor)
    out.record({**info.row(), "token": token}, title=f"token {info.name} (shown once)")


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Tokens, their scopes and use (never the tokens themselves)."""
    from fatctl.service.tokens import list_tokens

    rows = [t.row() for t in list_tokens(ctx().engine)]
    Output(json_out).table(rows, COLUMNS, title="API tokens")


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The token to revoke.")], json_out: JsonOpt = False
) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    from fatctl.service.tokens import revoke_token, token_name

    name = token_name(name)  # a malformed name is bad input (exit 2), not "no such token"
    c = ctx()
    Output(json_out).record(revoke_token(c.engine, name, c.actor).row(), title="token revoked")
