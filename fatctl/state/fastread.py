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
