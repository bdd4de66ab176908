"""Cost arithmetic against the emulator's price list document (the real API's shape): exact
decimals, location-dependent prices, backups as a percentage, margins and totals."""

from __future__ import annotations

import copy
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from fatctl.errors import CloudError, ConfigError
from fatctl.sandbox.hetzner.catalog import pricing
from fatctl.services.cost.price_cache import cached_pricing
from fatctl.services.cost.prices import (
    AgentInput,
    PriceBook,
    agent_cost,
    cents,
    exact,
    parse_pricing,
    plan_prices,
    totals,
)

PRICES = {"managed": Decimal("29.00"), "byok": Decimal("12.00")}


@pytest.fixture
def book() -> PriceBook:
    # Through JSON, as it comes off the wire: prices are strings, never floats.
    return parse_pricing(json.loads(json.dumps(pricing())))


def test_price_list_is_read_exactly(book: PriceBook) -> None:
    assert book.currency == "EUR"
    assert book.server[("cx23", "fsn1")] == Decimal("3.49")
    assert book.server[("cpx22", "ash")] == Decimal("7.188")  # US locations cost 20% more
    assert ("cx23", "ash") not in book.server  # not offered there
    assert book.primary_ip[("ipv4", "nbg1")] == Decimal("0.5")
    assert book.primary_ip[("ipv6", "nbg1")] == Decimal("0")
    assert book.backup_percentage == Decimal("20")


def test_managed_agent_pays_server_ipv4_and_backups(book: PriceBook) -> None:
    cost = agent_cost(book, AgentInput("alice", "managed", "cx23", "fsn1", True), PRICES)
    assert (cost.server, cost.ipv4, cost.ipv6) == (Decimal("3.49"), Decimal("0.5"), Decimal(0))
    assert cost.backups == Decimal("0.698")  # 20 % of 3.49, not rounded
    assert cost.total == Decimal("4.688")
    assert cost.margin == Decimal("24.312")
    assert (cents(cost.total), exact(cost.margin)) == ("4.69", "24.3120")


def test_byok_agent_without_backups_elsewhere(book: PriceBook) -> None:
    cost = agent_cost(book, AgentInput("bob", "byok", "cpx22", "ash", False), PRICES)
    assert cost.backups == 0
    assert cost.total == Decimal("7.688")
    assert cost.margin == Decimal("4.312")


def test_missing_ips_cost_nothing_and_a_price_gap_is_an_error(book: PriceBook) -> None:
    bare = agent_cost(book, AgentInput("c", "byok", "cx23", "hel1", False, False, False), PRICES)
    assert bare.total == Decimal("3.49")
    with pytest.raises(CloudError, match="no Hetzner price for cx23 in sin"):
        agent_cost(book, AgentInput("d", "byok", "cx23", "sin", False), PRICES)


def test_totals_sum_exact_values_and_round_once(book: PriceBook) -> None:
    # Three agents at 4.688: rounding each to cents first would give 14.07, not 14.06.
    costs = [
        agent_cost(book, AgentInput(n, "managed", "cx23", "fsn1", True), PRICES) for n in "abc"
    ]
    t = totals(costs)
    assert t.cost == Decimal("14.064") and cents(t.cost) == "14.06"
    assert t.revenue == Decimal("87.00")
    assert t.margin == Decimal("72.936")


def test_malformed_price_list_is_one_clear_error() -> None:
    with pytest.raises(CloudError, match="unexpected document shape"):
        parse_pricing({"pricing": {"currency": "EUR"}})
    doc = copy.deepcopy(pricing())  # the emulator's catalog must stay as it is
    doc["pricing"]["server_types"][0]["prices"][0]["price_monthly"]["net"] = "n/a"
    with pytest.raises(CloudError, match="unreadable price at server_types/cx23/fsn1"):
        parse_pricing(doc)


def test_plan_prices_are_checked() -> None:
    assert plan_prices("30", "9.5") == {"managed": Decimal("30"), "byok": Decimal("9.5")}
    with pytest.raises(ConfigError, match="FATCTL_PRICE_BYOK"):
        plan_prices("30", "cheap")
    with pytest.raises(ConfigError, match="FATCTL_PRICE_MANAGED"):
        plan_prices("-1", "9")


def test_price_list_cache_honours_ttl_and_endpoint(tmp_path: Path) -> None:
    fetched: list[int] = []

    def fetch() -> dict[str, object]:
        fetched.append(1)
        return {"pricing": {"n": len(fetched)}}

    path = tmp_path / "cache" / "p.json"
    clock = [1000.0]
    doc, at = cached_pricing(path, "https://a/v1", 60, fetch, now=lambda: clock[0])
    assert doc == {"pricing": {"n": 1}} and at == 1000.0
    clock[0] = 1059.0
    assert cached_pricing(path, "https://a/v1", 60, fetch, now=lambda: clock[0])[1] == 1000.0
    assert len(fetched) == 1
    # another endpoint never reuses the entry; an expired entry is fetched again
    assert cached_pricing(path, "https://b/v1", 60, fetch, now=lambda: clock[0])[0]["pricing"]
    assert len(fetched) == 2
    clock[0] = 2000.0
    cached_pricing(path, "https://b/v1", 60, fetch, now=lambda: clock[0])
    assert len(fetched) == 3
    path.write_text("{half")  # a torn file counts as no entry
    cached_pricing(path, "https://b/v1", 60, fetch, now=time.time)
    assert len(fetched) == 4
