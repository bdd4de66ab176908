"""Lifecycle operations (suspend, resume, archive, purge, rebuild, move) as recorded, resumable
runs: one `lifecycle_ops` row per run, one audited step at a time.

An op is opened under the agent's lease (`services.common.leases.agent_lease`, lent to the
services it calls: a provision or restore inside it takes the same lease again). While an op
is open (not `done`), it is the agent's only op: another kind is refused in one line (exit 2)
naming the open one, and rerunning the same kind continues it. Steps are announced and audited
as `<kind>.<step>` by `services.common.steps.StepLog`; each finished step moves the row's
`last_step` forward, so a rerun after a failure or a kill keeps every step up to it (as
`provision.flow.step_fate` keeps finished side effects) and runs the ones after it. A step that
only fills memory (a render) is named in `rerun` and runs again on every run.

`params` (JSON, at most 2,000 characters) holds what the operator asked for (a rerun's flags
win for the steps still to run) and what the steps chose and must find again on a rerun
(`Op.remember`: a snapshot id, a backup key, new IP ids).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fatctl.clock import Clock, wall_clock
from fatctl.errors import FatctlError, StateError
from fatctl.sensitive import redact
from fatctl.services.common.audit import audit_change
from fatctl.services.common.leases import PROVISION_TTL_S, agent_lease
from fatctl.services.common.open_ops import (
    CLOSED,
    DONE,
    OpInProgress,
    OpView,
    open_op,
    view_of,
)
from fatctl.services.common.steps import Emit, StepLog
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.state.models import LifecycleOp

RUNNING, FAILED = "running", "failed"
PARAMS_MAX = 2000  # lifecycle_ops.params
ERROR_MAX = 500  # lifecycle_ops.error
# A whole op may provision a box and restore its state under the lease (the heartbeat renews it).
LIFECYCLE_TTL_S = PROVISION_TTL_S


@dataclass
class Op:
    """One open op: its recorded progress and the steps' shared params."""

    db: Engine
    id: int
    agent: str
    kind: str
    steps: tuple[str, ...]
    log: StepLog
    params: dict[str, Any]
    done_through: int = -1  # index in `steps` of the last step an earlier run finished
    rerun: frozenset[str] = frozenset()
    ran: list[str] = field(default_factory=list)

    @property
    def resumed(self) -> bool:
        return self.done_through >= 0

    def fate(self, step: str) -> str:
        """`kept` (an earlier run finished it) or `run`."""
        if step not in self.rerun and self._index(step) <= self.done_through:
            return "kept"
        return "run"

    def run(self, step: str, action: Callable[[], Mapping[str, object] | None]) -> None:
        """Run `step` unless an earlier run finished it; record it as finished after."""
        if self.fate(step) == "kept":
            self.log.note(step, "kept", "done by an earlier run")
            return
        self.log.run(step, lambda: dict(action() or {}))
        self.ran.append(step)
        self._finished(step)

    def skip(self, step: str, why: str) -> None:
        """A step not run by request (`--no-backup`): audited as skipped, recorded as passed."""
        if self.fate(step) == "kept":
            self.log.note(step, "kept", "done by an earlier run")
            return
        audit_change(self.db, self.log.actor, f"{self.kind}.{step}", self.agent, "skipped",
                     {"note": why})  # fmt: skip
        self.log.note(step, "skipped", why)
        self._finished(step)

    def remember(self, **values: object) -> None:
        """Keep what a step chose (ids, keys) in the op's params, for a rerun to find."""
        self.params.update(values)
        with session_scope(self.db) as session:
            row = _row(session, self.id)
            row.params = _dump(self.params)
            session.add(row)

    def _index(self, step: str) -> int:
        if step not in self.steps:
            raise ValueError(f"{step!r} is not a step of {self.kind}")  # a bug, not input
        return self.steps.index(step)

    def _finished(self, step: str) -> None:
        with session_scope(self.db) as session:
            row = _row(session, self.id)
            # Only forward: rerunning an early step (a render) must not hide later finished ones.
            if self._index(step) > self._last_index(row.last_step):
                row.last_step = step
                session.add(row)

    def _last_index(self, last_step: str) -> int:
        return self.steps.index(last_step) if last_step in self.steps else -1


@contextmanager
def lifecycle_op(
    db: Engine,
    agent: str,
    kind: str,
    actor: str,
    *,
    steps: tuple[str, ...],
    params: Mapping[str, object] | None = None,
    rerun: frozenset[str] = frozenset(),
    emit: Emit = lambda kind, **fields: None,
    check: Callable[[Session, OpView | None], None] | None = None,
    clock: Clock = wall_clock,
) -> Iterator[Op]:
    """Hold the agent's lease, open (or continue) the agent's `kind` op and yield it; the op is
    `done` when the block ends, `failed` (with its one-line error) when it raises. `check`
    sees the agent's open op (None for a new one) inside the opening transaction and may refuse
    before anything is written (a wrong state, a bad combination of flags). `clock` (the
    flow's `ctx.clock`) stamps the op's start and finish."""
    with lease(db, agent_lease(agent), ttl_s=LIFECYCLE_TTL_S, shared=True):
        log = StepLog(db, agent, actor, emit, flow=kind)
        op_id, merged, last = _open(db, agent, kind, actor, steps, dict(params or {}), check,
                                    clock)  # fmt: skip
        done = steps.index(last) if last in steps else -1
        op = Op(db, op_id, agent, kind, steps, log, merged, done_through=done, rerun=rerun)
        if op.resumed:
            log.note("op", "ok", f"op {op_id} resumed after {last}")
        try:
            yield op
        except Exception as exc:
            line = exc.one_line() if isinstance(exc, FatctlError) else type(exc).__name__
            close_op(db, op.id, FAILED, line, clock)
            raise
        close_op(db, op.id, DONE, "", clock)


def ops_of(db: Engine, agent: str) -> list[OpView]:
    """Every op of the agent, oldest first."""
    from sqlmodel import col, select

    from fatctl.state import repo
    from fatctl.state.models import LifecycleOp

    with session_scope(db) as session:
        row = repo.get_agent(session, agent)
        query = select(LifecycleOp).where(LifecycleOp.agent_pk == row.id)
        found = session.exec(query.order_by(col(LifecycleOp.id))).all()
        return [view_of(op, agent) for op in found]


def _open(
    db: Engine,
    agent: str,
    kind: str,
    actor: str,
    steps: tuple[str, ...],
    requested: dict[str, Any],
    check: Callable[[Session, OpView | None], None] | None,
    clock: Clock = wall_clock,
) -> tuple[int, dict[str, Any], str]:
    """The op's id, params and last finished step: the open one continued, else a new one."""
    from fatctl.state import repo
    from fatctl.state.models import LifecycleOp

    with session_scope(db) as session:
        row = repo.get_agent(session, agent)
        current = open_op(session, row.id or 0)
        view = None if current is None else view_of(current, agent)
        if view is not None and view.kind != kind:
            raise OpInProgress(
                f"agent {agent} has an unfinished {view.describe()}: {kind} refused",
                hint=view.hint(agent),
            )
        if check is not None:
            check(session, view)
        params = {**(view.params if view else {}), **requested}
        if current is None:
            current = LifecycleOp(agent_pk=row.id or 0, kind=kind, state=RUNNING,
                                  params=_dump(params), actor=actor[:100],
                                  started_at=clock())  # fmt: skip
        else:
            current.state, current.error, current.params = RUNNING, "", _dump(params)
            current.finished_at = None
        session.add(current)
        session.flush()
        return current.id or 0, params, current.last_step


def mark_op(db: Engine, op_id: int, **values: object) -> None:
    """Add `values` to an op's params from outside a run of it (`move --abandon` marks the
    move it undoes before its first write)."""
    with session_scope(db) as session:
        row = _row(session, op_id)
        row.params = _dump({**view_of(row, "").params, **values})
        session.add(row)


def close_op(db: Engine, op_id: int, state: str, error: str, clock: Clock = wall_clock) -> None:
    """The op's end (`done`, `abandoned`) or its failure (`failed`, with its one-line error)."""
    with session_scope(db) as session:
        row = _row(session, op_id)
        row.state, row.error = state, redact(error)[:ERROR_MAX]
        row.finished_at = clock() if state in CLOSED else None
        session.add(row)


def _row(session: Session, op_id: int) -> LifecycleOp:
    from fatctl.state.models import LifecycleOp

    row = session.get(LifecycleOp, op_id)
    if row is None:  # only a manual edit of the database removes it under the lease
        raise StateError(f"lifecycle op {op_id} vanished from the state database")
    return row


def _dump(params: Mapping[str, object]) -> str:
    text = json.dumps(dict(params), sort_keys=True, separators=(",", ":"))
    if len(text) > PARAMS_MAX:  # a bug: params hold ids and flags, never free text
        raise StateError(f"lifecycle op params exceed {PARAMS_MAX} characters")
    return text
