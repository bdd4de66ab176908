"""A lifecycle op's start and finish are stamped by the flow's clock (`ctx.clock`, the one the
rest of the flow reads: suspended_at, purge_after, R2 expiry), not by the wall clock (review 28
L2), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def test_op_start_and_finish_read_the_flows_clock(db_url: str) -> None:
    from sqlmodel import select

    from fatctl.clock import fixed
    from fatctl.services.lifecycle.ops import lifecycle_op
    from fatctl.state import migrate
    from fatctl.state.db import make_engine, session_scope
    from fatctl.state.models import LifecycleOp
    from tests.fixtures.fleet_rows import seed_agents

    migrate.upgrade(db_url)
    seed_agents(db_url, 1)
    db = make_engine(db_url)
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    try:
        with lifecycle_op(db, "agent00000", "rebuild", "test", steps=("only",),
                          clock=fixed(at)) as op:  # fmt: skip
            op.run("only", lambda: None)
        with session_scope(db) as session:
            (row,) = session.exec(select(LifecycleOp)).all()
            stamps: list[Any] = [row.started_at, row.finished_at]
    finally:
        db.dispose()
    assert [s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps] == [at, at]
