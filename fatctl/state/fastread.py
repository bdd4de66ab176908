"""Read paths that must be fast on large fleets: plain SQL through SQLAlchemy Core.

`fatctl agents list --json` over 10,000 agents is a start-up-bound command; building ORM
objects (and importing SQLModel/pydantic for them) would cost more than the query. The SQL is
the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

_AGENT_ROWS = """
SELECT a.name, a.state, o.email AS owner, o.plan, a.server_type AS type, a.location,
       a.image, a.runtime_version AS runtime, a.ipv4, a.ipv6, a.server_id, a.agent_id
FROM agents a JOIN owners o ON o.id = a.owner_id
{where}
ORDER BY a.name
"""


def list_agent_rows(engine: Engine, *, states: Sequence[str] = ()) -> list[dict[str, Any]]:
    from sqlalchemy import bindparam, text

    if states:
        stmt = text(_AGENT_ROWS.format(where="WHERE a.state IN :states")).bindparams(
            bindparam("states", expanding=True)
        )
        params: dict[str, Any] = {"states": list(states)}
    else:
        stmt, params = text(_AGENT_ROWS.format(where="")), {}
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt, params)]
