"""`fatctl cost`: every agent's monthly Hetzner cost beside its plan's price.

Agents come from the state database (their plan is their owner's); what they run comes from
Hetzner (one list of servers and one of primary IPs, so a resize or backups switched on by hand
are counted as they are), and prices from the cached price list. An agent whose server is not
found at Hetzner is costed as recorded (type, location, both IPs), marked `source=database`.
A suspended agent has no server: it costs its kept primary IPs and its suspend's snapshots (per
GB; one more list, of snapshots, only when some agent is suspended or archived); an archived
one has released its IPs and brings no revenue (a snapshot left of it is still counted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
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
    from fatctl.infra.hcloud.client import Hcloud


@dataclass(frozen=True)
class CostReport:
    costs: tuple[AgentCost, ...]
    totals: Totals
    book: PriceBook
    prices_fetched_at: float


NO_SERVER = (AgentState.SUSPENDED.value, AgentState.ARCHIVED.value)


def _inputs(
    engine: Engine, fleet: dict[str, FleetItem], snapshot_gb: Mapping[str, Decimal] | None = None
) -> list[AgentInput]:
    from fatctl.state import repo

    states = [s.value for s in AgentState if s != AgentState.DESTROYED]
    snapshots = snapshot_gb or {}
    out = []
    with session_scope(engine) as session:
        for agent in repo.list_agents(session, states=states):
            plan = repo.owner_of(session, agent).plan
            seen = fleet.get(agent.name)
            state = agent.state
            if seen is not None and seen.server_type:  # a server, whatever the state says
                out.append(AgentInput(agent.name, plan, seen.server_type, seen.location,
                                      seen.backups, seen.ipv4, seen.ipv6, state=state))  # fmt: skip
            elif state in NO_SERVER:
                # What Hetzner still holds for it; as recorded when it lists nothing of it.
                v4, v6 = (seen.ipv4, seen.ipv6) if seen is not None else (
                    bool(agent.primary_ipv4_id), bool(agent.primary_ipv6_id))  # fmt: skip
                out.append(AgentInput(
                    agent.name, plan, agent.server_type, agent.location, False, v4, v6,
                    source="hetzner" if seen is not None else "database", state=state,
                    server=False, snapshot_gb=snapshots.get(agent.name, Decimal(0)),
                ))  # fmt: skip
            else:
                backups = plan == ServicePlan.MANAGED.value  # what provisioning would set
                out.append(AgentInput(agent.name, plan, agent.server_type, agent.location,
                                      backups, source="database", state=state))  # fmt: skip
    return out


def _serverless(engine: Engine) -> bool:
    """Some agent is suspended or archived: its snapshots may be all it still costs."""
    from fatctl.state import repo

    with session_scope(engine) as session:
        return bool(repo.list_agents(session, states=list(NO_SERVER)))


def snapshot_sizes(h: Hcloud) -> dict[str, Decimal]:
    """GB of fatctl's snapshots per agent (Hetzner bills a snapshot by its `image_size`)."""
    from fatctl.infra.hcloud.catalog import FLEET_SELECTOR

    def get_all(**kw: Any) -> list[Any]:
        return list(h.client.images.get_all(type=["snapshot"], **kw))

    out: dict[str, Decimal] = {}
    for image in h.listed("list snapshots", get_all, FLEET_SELECTOR):
        agent = dict(image.labels or {}).get("agent", "")
        size = Decimal(str(image.image_size or 0))
        out[agent] = out.get(agent, Decimal(0)) + size
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
    sizes: dict[str, Decimal] = {}
    if _serverless(engine):
        for h in clients:
            sizes.update(snapshot_sizes(h))
    costs = tuple(agent_cost(book, item, prices) for item in _inputs(engine, seen, sizes))
    return CostReport(costs, totals(costs), book, fetched_at)


def cost_rows(report: CostReport) -> list[dict[str, Any]]:
    """One row per agent for the table, in cents."""
    return [
        {
            "agent": c.agent,
            "plan": c.plan,
            "state": c.state,
            "type": f"{c.server_type} {c.location}",
            "server": cents(c.server),
            "ips": cents(c.ipv4 + c.ipv6),
            "backups": cents(c.backups),
            "snapshots": cents(c.snapshots),
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
            "state": c.state,
            "server_type": c.server_type,
            "location": c.location,
            "source": c.source,
            "server": exact(c.server),
            "ipv4": exact(c.ipv4),
            "ipv6": exact(c.ipv6),
            "backups": exact(c.backups),
            "snapshots": exact(c.snapshots),
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
