"""Workflow counts for the metrics, read from DBOS's own table (`fatctl serve` runs its
workflows on DBOS, in fatctl's database: SQLite's main schema, or PostgreSQL's `dbos`).

Read with plain SQL at scrape time rather than through a launched DBOS, so any process that can
read the database can serve the metrics. DBOS's statuses (`dbos._sys_db.WorkflowStatusString`):
PENDING, SUCCESS, ERROR, MAX_RECOVERY_ATTEMPTS_EXCEEDED, CANCELLED, ENQUEUED, DELAYED. A
database where DBOS never ran has no such table: that is no workflows, not a failure.
"""

from __future__ import annotations

from typing import Any

from fatctl.monitoring.metrics import WorkflowCounts
from fatctl.state.rawdb import connect, dialect, fetch_dicts

WAITING = ("ENQUEUED", "DELAYED")  # on a queue, not started yet
FAILED = ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
DBOS_SCHEMA = "dbos"  # DBOSConfig's dbos_system_schema default

_COUNTS = """
SELECT COALESCE(queue_name, '') AS queue, status, COUNT(*) AS n FROM {table}
WHERE status IN ({marks}) GROUP BY COALESCE(queue_name, ''), status
"""


def _check(schema: str) -> None:
    """Refuse a schema name before it reaches SQL (it is formatted into the query)."""
    if not schema.isidentifier():
        raise ValueError(f"not a schema name: {schema!r}")


def _status_table(conn: Any, url: str, schema: str) -> str | None:
    """DBOS's workflow_status table as a query names it, or None where DBOS never ran."""
    sqlite = dialect(url) == "sqlite"
    exists = (
        "SELECT name AS found FROM sqlite_master WHERE type = 'table' AND name = 'workflow_status'"
        if sqlite
        else f"SELECT to_regclass('{schema}.workflow_status') AS found"
    )
    found = fetch_dicts(conn, exists)
    if not found or found[0]["found"] is None:
        return None
    return "workflow_status" if sqlite else f"{schema}.workflow_status"


def workflow_counts(url: str, schema: str = DBOS_SCHEMA) -> WorkflowCounts | None:
    """Waiting workflows per queue and failed ones in all, or None without DBOS's table."""
    statuses = WAITING + FAILED
    _check(schema)
    with connect(url) as conn:
        table = _status_table(conn, url, schema)
        if table is None:
            return None
        sql = _COUNTS.format(table=table, marks=", ".join("?" for _ in statuses))
        rows = fetch_dicts(conn, sql, statuses)
    depth: dict[str, int] = {}
    failed = 0
    for row in rows:
        if row["status"] in FAILED:
            failed += int(row["n"])
        else:
            depth[row["queue"]] = depth.get(row["queue"], 0) + int(row["n"])
    return WorkflowCounts(depth, failed)


# DBOS stamps `updated_at` in epoch milliseconds when a workflow's status changes.
_FAILED_SINCE = "SELECT COUNT(*) AS n FROM {table} WHERE status IN ({marks}) AND updated_at >= ?"


def failed_since(url: str, since_s: float, schema: str = DBOS_SCHEMA) -> int:
    """Workflows that ended in error at or after `since_s` (Unix time): what
    `increase(fatctl_workflows_failed_total[W])` counts over the window W ending now."""
    _check(schema)
    with connect(url) as conn:
        table = _status_table(conn, url, schema)
        if table is None:
            return 0
        sql = _FAILED_SINCE.format(table=table, marks=", ".join("?" for _ in FAILED))
        rows = fetch_dicts(conn, sql, (*FAILED, int(since_s * 1000)))
    return int(rows[0]["n"]) if rows else 0
