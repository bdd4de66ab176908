"""An agent's unfinished lifecycle op, as the flows outside the ops see it: reconcile makes no
repair for such an agent, push/converge/upgrade/R2 rotation/backup restore refuse it, and
`--all` lists leave it to the op. The ops themselves (`services.lifecycle.ops`) open, continue
and close them; this module only reads `lifecycle_ops` (common: every feature may use it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fatctl.errors import StateError
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.state.models import LifecycleOp

DONE = "done"
# A move given up by `fatctl move --abandon` (the agent kept on its old box): closed as done is.
ABANDONED = "abandoned"
CLOSED = (DONE, ABANDONED)


class OpInProgress(StateError):
    """Another lifecycle op of the agent is unfinished: the operator's next move is to finish
    it (rerun its command), so this is refused like bad input, before anything is written."""

    exit_code = 2


@dataclass(frozen=True)
class OpView:
    """An op row as flows and listings see it (no session attached)."""

    id: int
    agent: str
    kind: str
    state: str
    last_step: str
    params: dict[str, Any]
    error: str

    def command(self, agent: str) -> str:
        """The command that finishes the op: a move's with the flags it was asked with (its
        `--location` is required, and a rerun without `--type` keeps the stored one)."""
        flags = ""
        if self.abandoning:
            return f"fatctl move {agent} --abandon"
        if self.kind == "move" and self.params.get("location"):
            flags = f" --location {self.params['location']}"
            if self.params.get("server_type"):
                flags += f" --type {self.params['server_type']}"
        return f"fatctl {self.kind} {agent}{flags}"

    @property
    def abandoning(self) -> bool:
        """A move whose `--abandon` began: only finishing the abandon is safe from here."""
        return self.kind == "move" and bool(self.params.get("abandoning"))

    def hint(self, agent: str) -> str:
        """What the operator can do about it: finish it, or (a move only) give it up."""
        finish = f"finish it first: `{self.command(agent)}`"
        if self.kind == "move" and not self.abandoning:
            return f"{finish}, or keep the old box: `fatctl move {agent} --abandon`"
        return finish

    def describe(self) -> str:
        after = f"after step {self.last_step}" if self.last_step else "before its first step"
        return f"{self.kind} (op {self.id}, {self.state} {after})"


def open_op(session: Session, agent_pk: int) -> LifecycleOp | None:
    """The agent's unfinished op (running, or failed and not yet rerun to its end), if any."""
    from sqlmodel import col, select

    from fatctl.state.models import LifecycleOp

    query = (
        select(LifecycleOp)
        .where(LifecycleOp.agent_pk == agent_pk, col(LifecycleOp.state).not_in(CLOSED))
        .order_by(col(LifecycleOp.id).desc())
    )
    return session.exec(query.limit(1)).first()


def open_ops(session: Session) -> dict[int, OpView]:
    """Every agent's unfinished op, by agent pk (one query, for fleet-wide readers such as
    reconcile and the `--all` target lists). The view's `agent` is left empty."""
    from sqlmodel import col, select

    from fatctl.state.models import LifecycleOp

    query = select(LifecycleOp).where(col(LifecycleOp.state).not_in(CLOSED))
    out: dict[int, OpView] = {}
    for row in session.exec(query.order_by(col(LifecycleOp.id))).all():
        out[row.agent_pk] = view_of(row, "")  # the newest wins, as in `open_op`
    return out


def open_op_view(session: Session, agent: str) -> OpView | None:
    """The named agent's unfinished op as a view, if any."""
    from fatctl.state import repo

    row = repo.get_agent(session, agent)
    found = open_op(session, row.id or 0)
    return None if found is None else view_of(found, agent)


def refuse_if_open(session: Session, agent: str, doing: str) -> None:
    """For flows that change an agent's box outside the ops (push, converge and upgrade host
    steps, R2 credential rotation, backup restore): refused while an op is open, since the
    op's steps assume the box they left (a suspend stopped the gateway after its backup; a
    restart now would take writes its rerun then deletes with the server)."""
    view = open_op_view(session, agent)
    if view is not None:
        raise OpInProgress(
            f"agent {agent} has an unfinished {view.describe()}: {doing} refused",
            hint=view.hint(agent),
        )


def refuse_while_open(db: Engine, agent: str, doing: str) -> None:
    """`refuse_if_open` in its own transaction, for flows that hold no session of their own."""
    with session_scope(db) as session:
        refuse_if_open(session, agent, doing)


def view_of(row: LifecycleOp, agent: str) -> OpView:
    """The row as a view (params parsed; an unreadable one is empty)."""
    try:
        params = json.loads(row.params or "{}")
    except ValueError:
        params = {}
    return OpView(row.id or 0, agent, row.kind, row.state, row.last_step,
                  params if isinstance(params, dict) else {}, row.error)  # fmt: skip
