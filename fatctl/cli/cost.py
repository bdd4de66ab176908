"""`fatctl cost`: monthly Hetzner cost per agent beside its plan's price.

Skeleton: the command exists (scripts, completion and `fatctl --help` see it) and fails with
one clear line until its capability lands (issue 9).
"""

from __future__ import annotations

import typer

from fatctl.cli.placeholders import NotYetAvailable


def cost_(
    args: list[str] = typer.Argument(None, help="arguments (not yet accepted)"),  # noqa: B008
) -> None:
    """Monthly Hetzner cost per agent and in total, beside the plan's price (the margin)."""
    raise NotYetAvailable("`fatctl cost` is not available in this build yet (issue 9)")


def register(app: typer.Typer) -> None:
    app.command("cost", context_settings={"ignore_unknown_options": True})(cost_)
