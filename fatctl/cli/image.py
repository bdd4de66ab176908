"""`fatctl image build|list`: golden Hetzner snapshots with the runtime preinstalled.

Skeleton: the command exists (scripts, completion and `fatctl --help` see it) and fails with
one clear line until its capability lands (issue 9).
"""

from __future__ import annotations

import typer

from fatctl.cli.placeholders import NotYetAvailable


def image_(
    args: list[str] = typer.Argument(None, help="arguments (not yet accepted)"),  # noqa: B008
) -> None:
    """Golden images: snapshots with a runtime version preinstalled (build, list)."""
    raise NotYetAvailable("`fatctl image` is not available in this build yet (issue 9)")


def register(app: typer.Typer) -> None:
    app.command("image", context_settings={"ignore_unknown_options": True})(image_)
