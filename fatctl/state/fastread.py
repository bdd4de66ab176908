"""Read paths that must be fast on large fleets: fixed SQL over DB-API (see `rawdb`).

`fatctl agents list --json` over 10,000 agents is start-up bound: SQLAlchemy's import alone
costs more than the query. The SQL is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fatctl.state.rawdb import connect, fetch_dicts

_AGENT_ROWS = """
SELECT a.name, a.state, o.email AS owner, o.plan, a.server_type AS type, a.location,
       a.image, a.runtime_version AS runtime, a.ipv4, a.ipv6, a.server_id, a.agent_id
FROM agents a JOIN owners o ON o.id = a.owner_id
{where}
ORDER BY a.name
"""


def list_agent_rows(url: str, *, states: Sequence[str] = ()) -> list[dict[str, Any]]:
    where = f"WHERE a.state IN ({', '.join('?' for _ in states)})" if states else ""
    with connect(url) as conn:
        return fetch_dicts(conn, _AGENT_ROWS.format(where=where), tuple(states))


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching `prefix` literally at the start (escape character '!')."""
    return "".join(f"!{c}" if c in "!%_" else c for c in prefix) + "%"


def agent_names(url: str, prefix: str = "") -> list[str]:
    """Agent names starting with `prefix`, for shell completion."""
    sql = "SELECT name FROM agents WHERE name LIKE ? ESCAPE '!' ORDER BY name"
    with connect(url) as conn:
        return [row["name"] for row in fetch_dicts(conn, sql, (_like_prefix(prefix),))]


def column_values(url: str, column: str, columns: Sequence[str]) -> list[str]:
    """The distinct values of one agent column among `columns` (what `--label k=v` selects on)."""
    if column not in columns:  # the name goes into the SQL text: only known columns may
        return []
    sql = f"SELECT DISTINCT {column} AS v FROM agents WHERE {column} <> '' ORDER BY {column}"  # noqa: S608
    with connect(url) as conn:
        return [str(row["v"]) for row in fetch_dicts(conn, sql)]


def rollout_rows(url: str) -> list[dict[str, Any]]:
    """Every recorded rollout, newest first: id, kind, target, state."""
    sql = "SELECT id, kind, target, state FROM rollouts ORDER BY id DESC"
    with connect(url) as conn:
        return fetch_dicts(conn, sql)


def agent_projects(url: str) -> dict[str, str]:
    """Each placed agent's Hetzner project ("" the top level's), for routing its calls there;
    agents not placed yet (project NULL) are left out."""
    with connect(url) as conn:
        return {
            str(row["name"]): str(row["project"])
            for row in fetch_dicts(
                conn, "SELECT name, project FROM agents WHERE project IS NOT NULL"
            )
        }
