"""Monthly cost arithmetic: Hetzner's price list (the `/pricing` document) turned into a
`PriceBook`, and per-agent cost and margin from it. Pure, exact (`Decimal` from the API's
decimal strings, never floats); nothing here does I/O.

What an agent costs per month at Hetzner: its server type in its location, its primary IPs
(IPv4 is priced, IPv6 is free today but priced here if Hetzner lists a price), and, when
backups are on, `server_backup.percentage` of the server's price. Prices are net (VAT is the
customer's invoice's business, and reclaimable); plan prices are configured net too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from fatctl.errors import CloudError, ConfigError

CENT = Decimal("0.01")
EXACT = Decimal("0.0001")


@dataclass(frozen=True)
class PriceBook:
    """Monthly net prices by (server type, location) and (IP family, location)."""

    currency: str
    vat_rate: Decimal
    server: Mapping[tuple[str, str], Decimal]
    primary_ip: Mapping[tuple[str, str], Decimal]
    backup_percentage: Decimal
    image_gb: Decimal = Decimal(0)  # a snapshot's GB per month


@dataclass(frozen=True)
class AgentInput:
    """What one agent runs at Hetzner (live when the server was found, else as recorded)."""

    agent: str
    plan: str  # ServicePlan value
    server_type: str
    location: str
    backups: bool
    ipv4: bool = True
    ipv6: bool = True
    source: str = "hetzner"  # hetzner: as observed; database: server not found, as recorded
    state: str = ""  # the agent's state (AgentState value)
    # False for a suspended or archived agent with no server: only what it keeps is billed.
    server: bool = True
    snapshot_gb: Decimal = Decimal(0)  # its snapshots (a suspend's), billed per GB and month


@dataclass(frozen=True)
class AgentCost:
    agent: str
    plan: str
    server_type: str
    location: str
    source: str
    server: Decimal
    ipv4: Decimal
    ipv6: Decimal
    backups: Decimal
    plan_price: Decimal
    state: str = ""
    snapshots: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.server + self.ipv4 + self.ipv6 + self.backups + self.snapshots

    @property
    def margin(self) -> Decimal:
        return self.plan_price - self.total


def _money(value: Any, where: str) -> Decimal:
    try:
        return Decimal(str(value["net"] if isinstance(value, Mapping) else value))
    except (InvalidOperation, KeyError, TypeError):
        shown = repr(value)[:80]
        raise CloudError(f"Hetzner price list: unreadable price at {where}: {shown}") from None


def _monthly(prices: Iterable[Mapping[str, Any]], where: str) -> dict[str, Decimal]:
    return {
        str(p["location"]): _money(p["price_monthly"], f"{where}/{p['location']}") for p in prices
    }


def parse_pricing(document: Mapping[str, Any]) -> PriceBook:
    """The `GET /pricing` body (`{"pricing": {...}}`) as a PriceBook; CloudError if malformed."""
    try:
        doc = document["pricing"]
        server = {
            (str(t["name"]), loc): price
            for t in doc["server_types"]
            for loc, price in _monthly(t["prices"], f"server_types/{t['name']}").items()
        }
        ips = {
            (str(family["type"]), loc): price
            for family in doc.get("primary_ips") or []
            for loc, price in _monthly(family["prices"], f"primary_ips/{family['type']}").items()
        }
        backup = _money(doc["server_backup"]["percentage"], "server_backup")
        image = doc.get("image") or {}
        per_gb = _money(image["price_per_gb_month"], "image") if image else Decimal(0)
        return PriceBook(str(doc["currency"]), _money(doc["vat_rate"], "vat_rate"), server, ips,
                         backup, per_gb)  # fmt: skip
    except (KeyError, TypeError):
        raise CloudError("Hetzner price list: unexpected document shape") from None


def agent_cost(book: PriceBook, item: AgentInput, plan_prices: Mapping[str, Decimal]) -> AgentCost:
    """One agent's monthly cost and its plan's price; CloudError when Hetzner lists no price
    for its server type in its location (a cost silently counted as zero would lie). An agent
    without a server (suspended, archived) costs what it keeps: IPs and snapshots."""
    key = (item.server_type, item.location)
    if item.server and key not in book.server:
        raise CloudError(f"no Hetzner price for {item.server_type} in {item.location}")
    server = book.server[key] if item.server else Decimal(0)

    def ip(family: str, present: bool) -> Decimal:
        return book.primary_ip.get((family, item.location), Decimal(0)) if present else Decimal(0)

    backups = server * book.backup_percentage / 100 if item.backups else Decimal(0)
    # A churned (archived) customer pays nothing; a suspended one keeps its plan.
    plan_price = plan_prices.get(item.plan, Decimal(0)) if item.state != "archived" else Decimal(0)
    return AgentCost(
        agent=item.agent,
        plan=item.plan,
        server_type=item.server_type,
        location=item.location,
        source=item.source,
        server=server,
        ipv4=ip("ipv4", item.ipv4),
        ipv6=ip("ipv6", item.ipv6),
        backups=backups,
        plan_price=plan_price,
        state=item.state,
        snapshots=book.image_gb * item.snapshot_gb,
    )


def cents(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def exact(value: Decimal) -> str:
    return str(value.quantize(EXACT, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Totals:
    agents: int
    cost: Decimal
    revenue: Decimal

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost


def totals(costs: Sequence[AgentCost]) -> Totals:
    """Sums of the exact values (rounding happens only when shown)."""
    return Totals(
        agents=len(costs),
        cost=sum((c.total for c in costs), Decimal(0)),
        revenue=sum((c.plan_price for c in costs), Decimal(0)),
    )


def plan_prices(managed: str, byok: str) -> dict[str, Decimal]:
    """The configured plan prices; BadInput naming the setting when one is not a number."""

    out = {}
    for plan, raw, env in (("managed", managed, "FATCTL_PRICE_MANAGED"),
                           ("byok", byok, "FATCTL_PRICE_BYOK")):  # fmt: skip
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            msg = f"{env} must be a price in EUR/month, like 29.00 (got {raw!r})"
            raise ConfigError(msg) from None
        if not value.is_finite() or value < 0:
            raise ConfigError(f"{env} must be a price >= 0 in EUR/month (got {raw!r})")
        out[plan] = value
    return out
