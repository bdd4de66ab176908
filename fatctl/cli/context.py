"""Per-invocation context for CLI commands: settings, the database, confirmation, the actor.

Commands call `ctx()` rather than reading globals, and the database engine is created only
when a command needs it (most `--help` paths never touch it).
"""

from __future__ import annotations

import getpass
import os
import socket
from functools import cached_property
from typing import TYPE_CHECKING

from fatctl.config import Settings, load_settings
from fatctl.errors import BadInput

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.remote.target import Target
    from fatctl.secrets import KeyRing


class AppContext:
    """Lazily built resources for one command."""

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def database_url(self) -> str:
        """The state database's URL, refused unless migrated to this code's schema."""
        from fatctl.state.db import ensure_migrated

        ensure_migrated(self.settings.database_url)
        return self.settings.database_url

    @cached_property
    def engine(self) -> Engine:
        """A SQLAlchemy engine on the (migrated) state database."""
        from fatctl.state.db import make_engine

        return make_engine(self.database_url)

    @cached_property
    def keyring(self) -> KeyRing:
        from fatctl.secrets import keyring_from

        return keyring_from(self.settings.master_key, self.settings.previous_master_keys)

    @cached_property
    def actor(self) -> str:
        """Who the audit trail names: FATCTL_ACTOR (CI sets it) or user@host."""
        if explicit := os.environ.get("FATCTL_ACTOR"):
            return explicit[:100]
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return f"{user}@{socket.gethostname()}"[:100]


_CURRENT: AppContext | None = None


def ctx() -> AppContext:
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = AppContext()
    return _CURRENT


def reset_context() -> None:
    """Forget cached settings and engines (tests run many invocations in one process)."""
    global _CURRENT
    if _CURRENT is not None and "engine" in _CURRENT.__dict__:
        _CURRENT.engine.dispose()
    _CURRENT = None


def confirm(question: str, yes: bool) -> None:
    """Go on when `--yes` was given or a person says yes; never wait on a pipe or in CI.

    Asking needs a terminal on both stdin and stdout (a prompt written into a pipe is one
    nobody sees) and CI unset; otherwise a missing `--yes` is a bad-input error that says so.
    """
    if yes:
        return
    from fatctl.cli.output import in_ci, is_interactive

    if not is_interactive():
        why = "CI is set" if in_ci() else "no terminal to ask on"
        raise BadInput(f"{question.rstrip('?')}: refusing without --yes ({why})")
    import typer

    if not typer.confirm(question, default=False):
        raise BadInput("cancelled")


def chosen_targets(agents: list[str] | None, all_agents: bool) -> list[Target]:
    """The boxes a fleet command reaches: the agents named (checked) or `--all` reachable."""
    from fatctl.services.common.targets import select_targets
    from fatctl.validation import agent_name

    c = ctx()
    names = [agent_name(a) for a in agents or []]
    return select_targets(c.engine, c.settings, names=names, all_agents=all_agents)
