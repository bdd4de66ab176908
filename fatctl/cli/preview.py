"""`fatctl preview` and `fatctl apply`: fleet infra previews and batched infra changes.

Skeleton: the command exists (scripts, completion and `fatctl --help` see it) and fails with
one clear line until its capability lands (issue 9).
"""

from __future__ import annotations

import typer

from fatctl.cli.placeholders import NotYetAvailable


def preview_(
    args: list[str] = typer.Argument(None, help="arguments (not yet accepted)"),  # noqa: B008
) -> None:
    """Show per agent what applying infra would change (exit 0: nothing, 3: changes pending)."""
    raise NotYetAvailable("`fatctl preview` is not available in this build yet (issue 9)")


def apply_(
    args: list[str] = typer.Argument(None, help="arguments (not yet accepted)"),  # noqa: B008
) -> None:
    """Apply infra changes (type, firewall, labels) across the fleet in batches."""
    raise NotYetAvailable("`fatctl apply` is not available in this build yet (issue 9)")


def register(app: typer.Typer) -> None:
    app.command("preview", context_settings={"ignore_unknown_options": True})(preview_)
    app.command("apply", context_settings={"ignore_unknown_options": True})(apply_)
