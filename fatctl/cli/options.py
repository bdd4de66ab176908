"""Options every command shares, declared once so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated, Any

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (non-interactive use).")
]


def selected_targets(agents: str, all_agents: bool, label: str | None) -> list[Any]:
    """The boxes named by `--agents a,b | --all | --label k=v`, as SSH targets."""
    from fatctl.cli.context import ctx
    from fatctl.services.access import select_targets

    names = [n.strip() for n in agents.split(",") if n.strip()]
    return select_targets(
        ctx().engine, ctx().settings, names=names, all_agents=all_agents, label=label
    )
