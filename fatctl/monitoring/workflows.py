"""Workflow counts for the metrics, read from DBOS's own table (`fatctl serve` runs its
workflows on DBOS, in fatctl's database: SQLite's main schema, or PostgreSQL's `dbos`).

Read with plain SQL at scrape time rather than through a launched DBOS, so any process that can
read the database can serve the metrics. DBOS's statuses (`dbos._sys_db.WorkflowStatusString`):
PENDING, SUCCESS, ERROR, MAX_RECOVERY_ATTEMPTS_EXCEEDED, CANCELLED, ENQUEUED, DELAYED. A
database where DBOS never ran has no such table: that is no workflows, not a failure.
"""

from __future__ import annotations

from fatctl.monitoring.metrics import WorkflowCounts
from fatctl.state.rawdb import connect, dialect, fetch_dicts

WAITING = ("ENQUEUED", "DELAYED")  # on a queue, not started yet
FAILED = ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
DBOS_SCHEMA = "dbos"  # DBOSConfig's dbos_system_schema default

_COUNTS = """
SELECT COALESCE(queue_name, '') AS queue, status, COUNT(*) AS n FROM {table}
WHERE status IN ({marks}) GROUP BY COALESCE(queue_name, ''), status
"""


def workflow_counts(url: str, schema: str = DBOS_SCHEMA) -> WorkflowCounts | None:
    """Waiting workflows per queue and failed ones in all, or None without DBOS's table."""
    sqlite = dialect(url) == "sqlite"
    if not schema.isidentifier():
        raise ValueError(f"not a schema name: {schema!r}")
    exists = (
        "SELECT name AS found FROM sqlite_master WHERE type = 'table' AND name = 'workflow_status'"
        if sqlite
        else f"SELECT to_regclass('{schema}.workflow_status') AS found"
    )
    table = "workflow_status" if sqlite else f"{schema}.workflow_status"
    statuses = WAITING + FAILED
    with connect(url) as conn:
        found = fetch_dicts(conn, exists)
        if not found or found[0]["found"] is None:
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
