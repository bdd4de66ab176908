"""Shell completion of the values arguments take: agent names (one, or the next one of an
`--agents a,b` list), `--label k=v`, rollout ids and context names, read from the state database
of the context in use.

A completion runs on every TAB, so it reads through plain DB-API (fatctl.state.fastread):
no SDK, no SQLAlchemy, no schema gate (a completion only reads names). Anything that goes
wrong (no database yet, an unknown context, a locked file) completes nothing: an error line
would land in the middle of the user's prompt. Each function takes the word being typed as
`incomplete`, the name Typer's `autocompletion=` passes it by, and Typer keeps only the values
that start with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fatctl.cli.context import ctx

T = TypeVar("T")


def _quietly(read: Callable[[], list[T]]) -> list[T]:
    try:
        return read()
    except Exception:  # see the module docstring: completion never reports
        return []


def _names(prefix: str) -> list[str]:
    from fatctl.state.fastread import agent_names

    return _quietly(lambda: agent_names(ctx().settings.database_url, prefix))


def agent_names(incomplete: str) -> list[str]:
    """Agents whose name starts with what is typed."""
    return _names(incomplete)


def agent_lists(incomplete: str) -> list[str]:
    """`--agents a,b,c`: the typed list with each agent that can come next (none twice)."""
    done, comma, last = incomplete.rpartition(",")
    taken = set(done.split(",")) if comma else set()
    return [f"{done}{comma}{name}" for name in _names(last) if name not in taken]


def labels(incomplete: str) -> list[str]:
    """`--label k=v`: the columns it selects on, then the values that column holds."""
    from fatctl.domain import LABEL_COLUMNS
    from fatctl.state.fastread import column_values

    key, sep, _ = incomplete.partition("=")
    if not sep:
        return [f"{column}=" for column in LABEL_COLUMNS]
    values = _quietly(lambda: column_values(ctx().settings.database_url, key, LABEL_COLUMNS))
    return [f"{key}={value}" for value in values]


def rollout_ids(incomplete: str) -> list[tuple[str, str]]:
    """Recorded rollouts, newest first, each with what it rolls and how it stands."""
    from fatctl.state.fastread import rollout_rows

    rows = _quietly(lambda: rollout_rows(ctx().settings.database_url))
    return [(str(r["id"]), f"{r['kind']} {r['target']} ({r['state']})") for r in rows]


def context_names(incomplete: str) -> list[str]:
    """The contexts fatctl.toml defines."""
    from fatctl.config import context_names as defined

    return _quietly(lambda: defined()[0])
