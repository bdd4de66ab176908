"""`GET /v1/fleet`: the fleet at a glance, from the state database only.

Agents counted by state and by plan, and each running agent's newest probe as the health
sweep stored it (`monitoring.store`): no box is reached from the request, so the answer costs
two queries whatever the fleet's size. A page of the per-agent rows at a time, by name.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlmodel import col, select

from fatctl.monitoring.store import recent_rows
from fatctl.monitoring.targets import RUNNING_STATES
from fatctl.service.api.paging import Limit, page_of
from fatctl.service.api.routes import ERRORS, Admin
from fatctl.state.db import session_scope
from fatctl.state.models import Agent, Owner

router = APIRouter(prefix="/v1", responses=ERRORS)


class Fleet(BaseModel):
    agents: int
    by_state: dict[str, int]
    by_plan: dict[str, int] = Field(description="Agents not destroyed, by their owner's plan.")
    probes: dict[str, int] = Field(
        description="Running agents by their newest probe: ok, "
        "failing, or unprobed (none stored yet)."
    )
    items: list[dict[str, Any]] = Field(description="Running agents and their newest probe.")
    next_cursor: str


def _newest_probes(url: str) -> dict[str, dict[str, Any]]:
    """Each running agent's newest stored probe (rows come oldest first per agent)."""
    newest: dict[str, dict[str, Any]] = {}
    for row in recent_rows(url, states=RUNNING_STATES):
        newest[row["name"]] = row
    return newest


def _probe(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "at": row["at"].isoformat(),
        "ok": row["ok"],
        "via": row["via"],
        "status_code": row["status_code"],
        "error": row["error"],
    }


@router.get("/fleet", response_model=Fleet)
def fleet_status(request: Request, token: Admin, limit: Limit = 50, cursor: str = "") -> Fleet:
    """Agents by state and plan, and the running ones' newest probes (a page, by name)."""
    rt = request.app.state.runtime
    with session_scope(rt.db) as session:
        rows = session.exec(
            select(Agent.name, Agent.state, Owner.plan).join(
                Owner, col(Agent.owner_id) == col(Owner.id)
            )
        ).all()
    newest = _newest_probes(rt.settings.database_url)
    running = sorted(name for name, state, _ in rows if state in RUNNING_STATES)
    health = Counter(
        "unprobed" if n not in newest else "ok" if newest[n]["ok"] else "failing" for n in running
    )
    states = {name: state for name, state, _ in rows}
    page = page_of(
        running,
        str,
        cursor,
        limit,
        lambda n: {"name": n, "state": states[n], "probe": _probe(newest.get(n))},
    )
    return Fleet(
        agents=len(rows),
        by_state=dict(sorted(Counter(state for _, state, _ in rows).items())),
        by_plan=dict(
            sorted(Counter(plan for _, state, plan in rows if state != "destroyed").items())
        ),
        probes={k: health.get(k, 0) for k in ("ok", "failing", "unprobed")},
        items=page.items,
        next_cursor=page.next_cursor,
    )
