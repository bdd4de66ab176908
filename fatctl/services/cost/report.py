"""`fatctl cost`: every agent's monthly Hetzner cost beside its plan's price.

Agents come from the state database (their plan is their owner's); what they run comes from
Hetzner (one list of servers and one of primary IPs, so a resize or backups switched on by hand
are counted as they are), and prices from the cached price list. An agent whose server is not
found at Hetzner is costed as recorded (type, location, both IPs), marked `source=database`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fatctl.config import Settings
from fatctl.domain import AgentState, ServicePlan
from fatctl.services.cost.price_cache import cache_path, cached_pricing, ttl_seconds
from fatctl.services.cost.prices import (
    AgentCost,
    AgentInput,
    PriceBook,
    Totals,
    agent_cost,
    cents,
    exact,
    parse_pricing,
    plan_prices,
    totals,
)
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.infra.hcloud.catalog import FleetItem


@dataclass(frozen=True)
class CostReport:
    costs: tuple[AgentCost, ...]
    totals: Totals
    book: PriceBook
    prices_fetched_at: float


def _inputs(engine: Engine, fleet: dict[str, FleetItem]) -> list[AgentInput]:
    from fatctl.state import repo

    states = [s.value for s in AgentState if s != AgentState.DESTROYED]
    out = []
    with session_scope(engine) as session:
        for agent in repo.list_agents(session, states=states):
            plan = repo.owner_of(session, agent).plan
            seen = fleet.get(agent.name)
            if seen is not None and seen.server_type:
                out.append(AgentInput(agent.name, plan, seen.server_type, seen.location,
                                      seen.backups, seen.ipv4, seen.ipv6))  # fmt: skip
            else:
                backups = plan == ServicePlan.MANAGED.value  # what provisioning would set
                out.append(AgentInput(agent.name, plan, agent.server_type, agent.location,
                                      backups, source="database"))  # fmt: skip
    return out


def fleet_cost(
    engine: Engine, settings: Settings, *, now: Callable[[], float] = time.time
) -> CostReport:
    """Settings are checked before any API call; one price list read per TTL, two lists."""
    from fatctl.infra.hcloud.catalog import fleet, pricing_document
    from fatctl.infra.hcloud.client import Hcloud

    prices = plan_prices(settings.price_managed, settings.price_byok)
    ttl = ttl_seconds(settings.pricing_ttl)
    # Every Hetzner project of the fleet, each with its own token (agent names are unique).
    names = [p.name for p in settings.hcloud_projects] or [settings.hcloud_project or ""]
    each = [settings.for_project(name) for name in names]
    clients = [Hcloud(project) for project in each]
    document, fetched_at = cached_pricing(
        cache_path(settings.data_dir), each[0].hcloud_endpoint, ttl,
        lambda: pricing_document(clients[0]), now=now,
    )  # fmt: skip
    book = parse_pricing(document)
    seen = {name: item for h in clients for name, item in fleet(h).items()}
    costs = tuple(agent_cost(book, item, prices) for item in _inputs(engine, seen))
    return CostReport(costs, totals(costs), book, fetched_at)


def cost_rows(report: CostReport) -> list[dict[str, Any]]:
    """One row per agent for the table, in cents."""
    return [
        {
            "agent": c.agent,
            "plan": c.plan,
            "type": f"{c.server_type} {c.location}",
            "server": cents(c.server),
            "ips": cents(c.ipv4 + c.ipv6),
            "backups": cents(c.backups),
            "cost": cents(c.total),
            "price": cents(c.plan_price),
            "margin": cents(c.margin),
            "source": c.source,
        }
        for c in report.costs
    ]


def cost_document(report: CostReport) -> dict[str, Any]:
    """The JSON form: exact amounts as decimal strings (4 places), net, per month."""
    fetched = datetime.fromtimestamp(report.prices_fetched_at, UTC).isoformat()
    agents = [
        {
            "agent": c.agent,
            "plan": c.plan,
            "server_type": c.server_type,
            "location": c.location,
            "source": c.source,
            "server": exact(c.server),
            "ipv4": exact(c.ipv4),
            "ipv6": exact(c.ipv6),
            "backups": exact(c.backups),
            "cost": exact(c.total),
            "plan_price": exact(c.plan_price),
            "margin": exact(c.margin),
        }
        for c in report.costs
    ]
    t = report.totals
    return {
        "currency": report.book.currency,
        "basis": "net per month",
        "vat_rate": str(report.book.vat_rate),
        "prices_fetched_at": fetched,
        "agents": agents,
        "total": {
            "agents": t.agents,
            "cost": exact(t.cost),
            "revenue": exact(t.revenue),
            "margin": exact(t.margin),
        },
    }
