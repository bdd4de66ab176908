"""Commands whose capability lands in a later issue: they exist (so scripts and completion see
them) and fail with one clear line until then. Each is replaced by its own module when built.
"""

from __future__ import annotations

import typer

from fatctl.errors import FatctlError

PENDING: dict[str, str] = {
    "provision": "provisioning (issue 5)",
    "status": "status (issue 5)",
    "destroy": "destroy (issue 5)",
    "upgrade": "rolling upgrades (issue 7)",
    "ssh": "SSH access (issue 6)",
    "sandbox": "the sandbox cloud (issue 5)",
}


class NotYetAvailable(FatctlError):
    exit_code = 1


def _make(name: str, what: str):
    def command(
        args: list[str] = typer.Argument(None, help="arguments (not yet accepted)"),  # noqa: B008
    ) -> None:
        raise NotYetAvailable(f"`fatctl {name}` is not available in this build: {what}")

    command.__doc__ = f"Not yet available: {what}."
    return command


def register(app: typer.Typer, skip: frozenset[str] = frozenset()) -> None:
    """Add every pending command not in `skip` (those already have a real implementation)."""
    for name, what in PENDING.items():
        if name not in skip:
            app.command(name, context_settings={"ignore_unknown_options": True})(_make(name, what))
