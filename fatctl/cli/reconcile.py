"""`fatctl reconcile [--fix]`: database vs Hetzner vs Cloudflare vs boxes.

Skeleton: the command exists (scripts, completion and `fatctl --help` see it) and fails with
one clear line until its capability lands (issue 8).
"""

from __future__ import annotations

import typer

from fatctl.cli.placeholders import NotYetAvailable


def reconcile_(
    args: list[str] = typer.Argument(None, help="arguments (not yet accepted)"),  # noqa: B008
) -> None:
    """Compare the database, Hetzner, Cloudflare and the boxes: orphans, drift, missing pieces."""
    raise NotYetAvailable("`fatctl reconcile` is not available in this build yet (issue 8)")


def register(app: typer.Typer) -> None:
    app.command("reconcile", context_settings={"ignore_unknown_options": True})(reconcile_)
