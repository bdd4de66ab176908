"""`fatctl converge`: re-rendered configuration applied to live boxes as a rollout.

Skeleton: the command exists (scripts, completion and `fatctl --help` see it) and fails with
one clear line until its capability lands (issue 7).
"""

from __future__ import annotations

import typer

from fatctl.cli.placeholders import NotYetAvailable


def converge_(
    args: list[str] = typer.Argument(None, help="arguments (not yet accepted)"),  # noqa: B008
) -> None:
    """Re-render boxes' configuration and roll it out over SSH (per-box diff with --dry-run)."""
    raise NotYetAvailable("`fatctl converge` is not available in this build yet (issue 7)")


def register(app: typer.Typer) -> None:
    app.command("converge", context_settings={"ignore_unknown_options": True})(converge_)
