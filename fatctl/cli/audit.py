"""`fatctl audit`: the trail of who did what, when, and how it ended."""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output


def audit(
    target: Annotated[str | None, typer.Option("--target", help="Agent name or 'fleet'.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Show the audit trail, newest first."""
    import json

    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(ctx().engine) as session:
        rows = [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "result": e.result,
                "detail": json.loads(e.detail or "{}") if json_out else e.detail,
            }
            for e in repo.audit_trail(session, target=target, limit=limit)
        ]
    Output(json_out).table(
        rows, ("at", "actor", "action", "target", "result", "detail"), title="audit events"
    )
