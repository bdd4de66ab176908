"""Audit events written in their own transaction, for flows that record per-host outcomes, and
what the trail keeps of a command an operator ran on boxes (`fatctl ssh`, `fatctl exec`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fatctl.sensitive import redact
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# The event's detail is stored as JSON cut at 2,000 characters: bounding the free text here
# keeps it whole (and parseable) however long a command line is.
COMMAND_CHARS = 1000
ERROR_CHARS = 300


def audit_change(
    engine: Engine, actor: str, action: str, target: str, result: str, detail: Mapping[str, object]
) -> None:
    """One audit event in its own transaction (per-host outcomes must survive a later failure)."""
    from fatctl.state import repo

    with session_scope(engine) as session:
        repo.audit(
            session, actor=actor, action=action, target=target, result=result, detail=dict(detail)
        )


@dataclass(frozen=True)
class RemoteRun:
    """One command an operator ran on one box, as the audit trail keeps it."""

    agent: str
    command: str | None  # None: an interactive shell
    exit_code: int | None  # None: it never ran to an exit status (see `error`)
    error: str | None = None
    stdin: bool = False  # whether this process's stdin was sent; what it held is never kept

    @property
    def result(self) -> str:
        return "ok" if self.error is None and self.exit_code == 0 else "failed"

    def detail(self) -> dict[str, object]:
        # The command line is the operator's own and is kept, but a credential typed into it
        # (TOKEN=..., a private key) is redacted like in every other message.
        shown: dict[str, object] = {"exit": self.exit_code, "stdin": self.stdin}
        if self.command is None:
            shown["shell"] = True
        else:
            shown["command"] = _bounded(redact(self.command), COMMAND_CHARS)
        if self.error:
            shown["error"] = _bounded(redact(self.error), ERROR_CHARS)
        return shown


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def audit_runs(engine: Engine, actor: str, action: str, runs: Sequence[RemoteRun]) -> None:
    """One event per box in one transaction: a fan-out to thousands of boxes is one commit."""
    from fatctl.state import repo

    with session_scope(engine) as session:
        for run in runs:
            repo.audit(session, actor=actor, action=action, target=run.agent,
                       result=run.result, detail=run.detail())  # fmt: skip
