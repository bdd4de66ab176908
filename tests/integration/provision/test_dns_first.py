"""DNS before the server (issue 17): the agent's A/AAAA records point at its primary IPs
before the server exists, so the name resolves when the box's Caddy first orders its
certificate; and the reordered flow stays resumable.

Let's Encrypt resolves the name when it validates the order ("the ACME server ... performs the
validation ... queries the DNS for the domain name", RFC 8555 section 8), and a name without
records answers NXDOMAIN, which resolvers cache for the zone's negative TTL (RFC 2308). Hetzner
primary IPs exist without a server ("Primary IPs can be assigned to Servers ... They can also
exist unassigned", Cloud API docs, Primary IPs), so their addresses are known first.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

import pytest

from fatctl.domain import ResourceChange
from fatctl.errors import CloudError
from fatctl.infra.engine import Capability
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
from fatctl.services.provision.dry_run import provision_steps
from fatctl.services.provision.flow import provision, resume_point
from tests.integration.provision.test_call_counts import FRESH_CLOUDFLARE, FRESH_HETZNER, api_calls
from tests.integration.provision.test_provision_flow import agent_row, opts, request


def _engine(plane: Any, on_change: Any = None) -> Any:
    return HcloudEngine(plane.settings, timing=Timing.instant(), sleep=lambda s: None,
                        on_change=on_change)  # fmt: skip


def _records_of(plane: Any, server: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The A/AAAA the server's assigned primary IPs call for (the box takes its /64's ::1)."""
    on = {ip["type"]: ip["ip"] for ip in plane.primary_ips() if ip["assignee_id"] == server["id"]}
    v6 = str(ipaddress.IPv6Network(on["ipv6"], strict=False)[1])
    return [("A", f"{server['name']}.sandbox.test", on["ipv4"]),
            ("AAAA", f"{server['name']}.sandbox.test", v6)]  # fmt: skip


def test_records_point_at_the_ips_before_the_server_is_created(plane: Any) -> None:
    """Fails on the old order (infra, then dns): no record existed when the server was made."""
    seen_at_server_create: list[list[tuple[str, str, str]]] = []

    def sink(change: ResourceChange) -> None:
        if change.kind == "server" and change.action == "create":
            seen_at_server_create.append(plane.dns())

    done = provision(plane.db, plane.ring, plane.settings, _engine(plane, sink),
                     request("early"), "t", opts())  # fmt: skip
    final = [("A", "early.sandbox.test", done.ipv4), ("AAAA", "early.sandbox.test", done.ipv6)]
    assert seen_at_server_create == [final]  # the records were there, at the final addresses
    assert plane.dns() == final == _records_of(plane, plane.servers()["early"])


def test_dns_first_costs_no_extra_call(plane: Any) -> None:
    """The IPs reserved by the dns step are the ones the server create assigns: still 10
    Hetzner and 3 Cloudflare calls for a fresh agent (issue 5's budget)."""
    provision(plane.db, plane.ring, plane.settings, _engine(plane), request("warm"), "t", opts())
    plane.hetzner.reset_stats()
    plane.cloudflare.reset_stats()
    provision(plane.db, plane.ring, plane.settings, _engine(plane), request("cheap"), "t", opts())
    assert api_calls(plane.hetzner) == FRESH_HETZNER
    assert api_calls(plane.cloudflare) == FRESH_CLOUDFLARE


def test_run_stopped_between_dns_and_infra_converges(plane: Any) -> None:
    """A run that ends after DNS (records at unassigned IPs, no server) is continued by the
    next one: the server gets those IPs, nothing is duplicated, the records stay."""
    first = replace(opts(), skip=opts().skip | {"infra"})
    provision(plane.db, plane.ring, plane.settings, _engine(plane), request("halfway"), "t",
              first)  # fmt: skip
    row = agent_row(plane, "halfway")
    assert row.last_step == "dns" and not row.server_id
    assert plane.servers() == {} and len(plane.primary_ips()) == 2
    records = plane.dns()
    assert records == [("A", "halfway.sandbox.test", row.ipv4),
                       ("AAAA", "halfway.sandbox.test", row.ipv6)]  # fmt: skip
    events: list[Any] = []
    done = provision(plane.db, plane.ring, plane.settings, _engine(plane), request("halfway"),
                     "t", opts(events))  # fmt: skip
    assert ("step.kept", "dns") in events and ("step.done", "infra") in events
    assert (done.ipv4, done.ipv6) == (row.ipv4, row.ipv6)
    assert len(plane.servers()) == 1 and len(plane.primary_ips()) == 2
    assert plane.dns() == records == _records_of(plane, plane.servers()["halfway"])
    assert all(ip["assignee_id"] == int(done.server_id) for ip in plane.primary_ips())


def test_agent_an_older_fatctl_left_after_infra_gets_its_records(plane: Any) -> None:
    """The old order recorded `infra` before any DNS: resuming after it would keep a DNS step
    that never ran. Such an agent (infra done, no records) resumes after `render`."""
    legacy = replace(opts(), skip=opts().skip | {"dns"})
    provision(plane.db, plane.ring, plane.settings, _engine(plane), request("legacy"), "t",
              legacy)  # fmt: skip
    assert agent_row(plane, "legacy").last_step == "infra" and plane.dns() == []
    assert resume_point("infra", has_records=False) == resume_point("render", has_records=False)
    steps = dict(provision_steps(resume_point("infra", False), False, opts().skip))
    assert (steps["dns"], steps["infra"]) == ("run", "run")  # the dry run tells the same
    done = provision(plane.db, plane.ring, plane.settings, _engine(plane), request("legacy"),
                     "t", opts())  # fmt: skip
    assert plane.dns() == _records_of(plane, plane.servers()["legacy"])
    assert len(plane.servers()) == 1 and done.ipv4


def test_engine_without_address_reserving_applies_the_box_in_the_dns_step(plane: Any) -> None:
    """An engine that makes its IPs only with its server (the Pulumi stack) keeps the old
    effect: the box is applied once, in the dns step, before the records."""
    engine = _engine(plane)
    engine.capabilities = engine.capabilities - {Capability.ADDRESSES_FIRST}
    events: list[Any] = []
    done = provision(plane.db, plane.ring, plane.settings, engine, request("stacked"), "t",
                     opts(events))  # fmt: skip
    assert len(plane.servers()) == 1 and len(plane.primary_ips()) == 2
    assert plane.dns() == _records_of(plane, plane.servers()["stacked"])
    assert done.server_id and agent_row(plane, "stacked").last_step == "infra"


def test_dry_run_tells_dns_before_infra() -> None:
    order = [step for step, _ in provision_steps(-1, False, frozenset())]
    assert order.index("dns") < order.index("infra")


def test_records_follow_the_box_when_a_capacity_fallback_moves_it(plane: Any) -> None:
    """The records were made at IPs in the asked location; Hetzner had no room there, the
    engine's fallback put the box elsewhere on new IPs (primary IPs are bound to their
    location), and the infra step pointed the records at those."""
    settings = replace(plane.settings, fallbacks="cx23@nbg1")
    plane.hetzner.set_faults(sold_out={"cx23@fsn1": "resource_unavailable"})
    events: list[Any] = []
    done = provision(plane.db, plane.ring, settings, HcloudEngine(settings, timing=Timing.instant(),
                     sleep=lambda s: None), request("moved"), "t", opts(events))  # fmt: skip
    plane.hetzner.clear_faults()
    server = plane.servers()["moved"]
    assert len(plane.servers()) == 1 and len(plane.primary_ips()) == 2
    assert plane.dns() == _records_of(plane, server)
    assert plane.dns() == [("A", "moved.sandbox.test", done.ipv4),
                           ("AAAA", "moved.sandbox.test", done.ipv6)]  # fmt: skip
    assert agent_row(plane, "moved").location == "nbg1"


def test_no_room_anywhere_then_a_rerun_ends_ready_on_the_records_addresses(plane: Any) -> None:
    """Review finding 3 (/tmp/rev17/all_fail_resume.py): every candidate sold out deleted the
    reserved fsn1 pair the records pointed at and left an nbg1 pair, so every rerun failed with
    `primary IP is in another location`. Now the reserved pair is kept; the rerun, once
    Hetzner has room again, creates the box on it and the records still match."""
    settings = replace(plane.settings, fallbacks="cx23@nbg1")

    def engine() -> HcloudEngine:
        return HcloudEngine(settings, timing=Timing.instant(), sleep=lambda s: None)

    plane.hetzner.set_faults(sold_out={"*@fsn1": "resource_unavailable",
                                       "*@nbg1": "resource_unavailable"})  # fmt: skip
    with pytest.raises(CloudError, match="no room"):
        provision(plane.db, plane.ring, settings, engine(), request("full"), "t", opts())
    row = agent_row(plane, "full")
    records = plane.dns()
    assert records == [
        ("A", "full.sandbox.test", row.ipv4),
        ("AAAA", "full.sandbox.test", row.ipv6),
    ]
    assert {(i["ip"], i["location"]) for i in plane.primary_ips() if i["type"] == "ipv4"} == {
        (row.ipv4, "fsn1")}  # fmt: skip
    assert len(plane.primary_ips()) == 2
    plane.hetzner.clear_faults()
    done = provision(plane.db, plane.ring, settings, engine(), request("full"), "t", opts())
    assert (done.ipv4, done.ipv6) == (row.ipv4, row.ipv6)
    assert plane.dns() == records == _records_of(plane, plane.servers()["full"])
    assert agent_row(plane, "full").last_step == "infra"
