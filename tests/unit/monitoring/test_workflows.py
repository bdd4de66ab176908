"""Workflow counts from DBOS's `workflow_status` table, on SQLite and PostgreSQL.

The table is made by DBOS's own schema (`dbos._schemas.system_database.SystemSchema`: "Real
schema is applied per-engine via schema_translate_map"), so a DBOS release that renames the
columns read here (`status`, `queue_name`) fails this test. The statuses are DBOS's
`WorkflowStatusString`: "PENDING", "SUCCESS", "ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
"CANCELLED", "ENQUEUED", "DELAYED".
"""

from __future__ import annotations

import pytest

from fatctl.monitoring.metrics import WorkflowCounts
from fatctl.monitoring.workflows import workflow_counts
from fatctl.state.db import make_engine

ROWS = [
    ("a1", "ENQUEUED", "agents"), ("a2", "ENQUEUED", "agents"), ("a3", "DELAYED", "agents"),
    ("r1", "ENQUEUED", "rollouts"), ("p1", "PENDING", "agents"), ("s1", "SUCCESS", "agents"),
    ("e1", "ERROR", "agents"), ("e2", "ERROR", None),
    ("m1", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", None), ("c1", "CANCELLED", "rollouts"),
]  # fmt: skip


def make_dbos_table(url: str) -> None:
    from dbos._schemas import SCHEMA_PLACEHOLDER
    from dbos._schemas.system_database import SystemSchema
    from sqlalchemy import insert, text

    sqlite = url.startswith("sqlite")
    engine = make_engine(url)
    table = SystemSchema.workflow_status
    with engine.begin() as conn:
        if not sqlite:
            conn.execute(text("CREATE SCHEMA dbos"))
        conn = conn.execution_options(
            schema_translate_map={SCHEMA_PLACEHOLDER: None if sqlite else "dbos"}
        )
        table.create(conn)
        for wfid, status, queue in ROWS:
            conn.execute(insert(table).values(
                workflow_uuid=wfid, status=status, queue_name=queue, created_at=0,
                updated_at=0, priority=0,
            ))  # fmt: skip
    engine.dispose()


def test_waiting_per_queue_and_failed_in_all(db_url: str) -> None:
    make_dbos_table(db_url)
    assert workflow_counts(db_url) == WorkflowCounts({"agents": 3, "rollouts": 1}, failed_total=3)


def test_without_dbos_there_are_no_counts(db_url: str) -> None:
    make_engine(db_url).dispose()  # creates the empty SQLite file; PostgreSQL's exists
    if db_url.startswith("sqlite"):
        import sqlite3

        sqlite3.connect(db_url.removeprefix("sqlite:///")).close()
    assert workflow_counts(db_url) is None


def test_a_schema_name_is_checked_before_it_reaches_sql() -> None:
    with pytest.raises(ValueError, match="not a schema name"):
        workflow_counts("sqlite:///x", schema="dbos; DROP TABLE agents")
