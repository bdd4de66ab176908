"""The pure reconcile diff: every finding kind, which ones carry a safe action, and the rules
that keep reconcile from touching what a person must decide (servers, IPs, unhealthy boxes)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fatctl.services.reconcile.diff import diff
from fatctl.services.reconcile.views import (
    DNS_DELETE,
    DNS_UPSERT,
    RELABEL,
    BoxHealth,
    CloudIp,
    CloudServer,
    DbAgent,
    DnsRecord,
    StackDrift,
    Views,
)

D = "sandbox.test"
LABELS = {"managed-by": "fatctl", "agent": "alpha", "plan": "managed"}


def agent(name: str = "alpha", **kw: object) -> DbAgent:
    base = DbAgent(
        name=name, state="ready", last_step="ready", server_id="10", ipv4="192.0.2.10",
        ipv6="2001:db8::1", server_type="cx23", runtime_version="2026.9.6",
        labels={**LABELS, "agent": name},
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def server(name: str = "alpha", **kw: object) -> CloudServer:
    labels = {**LABELS, "agent": name}
    base = CloudServer(id="10", name=name, server_type="cx23", status="running",
                       ipv4="192.0.2.10", ipv6="2001:db8::1", labels=labels)  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def ips(name: str = "alpha", server_id: str = "10") -> tuple[CloudIp, ...]:
    lab = {"managed-by": "fatctl", "agent": name}
    return (
        CloudIp("101", f"{name}-v4", "ipv4", "192.0.2.10", server_id, lab),
        CloudIp("102", f"{name}-v6", "ipv6", "2001:db8::/64", server_id, lab),
    )


def records(name: str = "alpha", v4: str = "192.0.2.10") -> tuple[DnsRecord, ...]:
    tags = ("fatctl", f"agent:{name}")
    return (
        DnsRecord("r1", "A", f"{name}.{D}", v4, tags),
        DnsRecord("r2", "AAAA", f"{name}.{D}", "2001:db8::1", tags),
    )


def healthy(name: str = "alpha", version: str = "2026.9.6") -> BoxHealth:
    return BoxHealth(name, True, True, version)


def views(**kw: object) -> Views:
    base = Views(domain=D, agents=(agent(),), servers=(server(),), ips=ips(),
                 records=records(), health=(healthy(),))  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def summary(v: Views) -> list[tuple[str, str, str, str]]:
    return [(f.kind, f.resource, f.agent, f.action) for f in diff(v)]


def test_clean_fleet_has_no_findings() -> None:
    assert diff(views()) == []


def test_orphan_server_and_ip_need_a_person() -> None:
    stray = server("ghost", id="99")
    found = diff(views(servers=(server(), stray), ips=ips() + ips("ghost", "99")))
    orphans = [f for f in found if f.kind == "orphan"]
    assert {f.resource for f in orphans} == {
        "server 99 (ghost)", "primary_ip 101 (192.0.2.10)", "primary_ip 102 (2001:db8::/64)"
    }  # fmt: skip
    assert all(not f.fixable and f.advice for f in orphans)
    srv = next(f for f in orphans if f.resource.startswith("server"))
    assert "hcloud server delete 99" in srv.advice and "no agent in the database" in srv.detail


def test_unlabelled_agent_server_is_an_orphan_and_a_destroying_one_says_finish() -> None:
    nameless = server("x", id="98", labels={"managed-by": "fatctl"})
    half = server("beta", id="97")
    v = views(
        agents=(agent(), agent("beta", state="destroying")), servers=(server(), nameless, half)
    )
    found = {f.resource: f for f in diff(replace(v, ips=None, records=None, health=None))}
    assert "no agent label" in found["server 98 (x)"].detail
    assert found["server 97 (beta)"].advice == "`fatctl destroy beta --yes` finishes it"


def test_in_flight_provision_is_not_an_orphan() -> None:
    early = agent("beta", state="provisioning", last_step="render", ipv4="", ipv6="")
    v = views(agents=(agent(), early), servers=(server(), server("beta", id="11")),
              records=records() + records("beta"))  # fmt: skip
    assert diff(v) == []


def test_orphan_dns_record_is_deleted_even_for_a_destroyed_agent() -> None:
    gone = agent("old", state="destroyed")
    v = views(agents=(agent(), gone), records=records() + records("old") + records("nobody"))
    found = [f for f in diff(v) if f.kind == "orphan"]
    assert len(found) == 4 and all(f.action == DNS_DELETE and f.fixable for f in found)
    assert {f.ref for f in found} == {"r1", "r2"}  # the fixture reuses ids per agent
    assert any("agent old is destroyed" in f.detail for f in found)


def test_missing_and_elsewhere_dns_are_upserted_to_recorded_addresses() -> None:
    only_aaaa = records()[1:]
    assert summary(views(records=only_aaaa)) == [
        ("missing", f"dns A alpha.{D}", "alpha", DNS_UPSERT)
    ]
    elsewhere = records(v4="203.0.113.7")
    found = diff(views(records=elsewhere))
    assert [(f.kind, f.action) for f in found] == [("drift", DNS_UPSERT)]
    assert "points at 203.0.113.7" in found[0].detail
    assert dict(found[0].params) == {"ipv4": "192.0.2.10", "ipv6": "2001:db8::1"}
    extra = DnsRecord("r3", "A", f"alpha.{D}", "192.0.2.10", ("fatctl", "agent:alpha"))
    dup = (*records(), extra)
    assert summary(views(records=dup)) == [("drift", f"dns A alpha.{D}", "alpha", DNS_UPSERT)]


def test_dns_is_not_repointed_while_database_and_hetzner_disagree() -> None:
    moved = server(ipv4="198.51.100.5")
    found = diff(views(servers=(moved,), records=records(v4="203.0.113.7")))
    dns = [f for f in found if f.resource.startswith("dns")]
    assert len(dns) == 1 and not dns[0].fixable and "disagree" in dns[0].advice
    assert any(f.kind == "drift" and "ipv4 198.51.100.5" in f.detail for f in found)


def test_type_drift_and_relabel() -> None:
    resized = server(server_type="cx33", labels={"managed-by": "fatctl", "agent": "alpha"})
    found = {f.detail.split(" ")[0]: f for f in diff(views(servers=(resized,)))}
    assert not found["type"].fixable and "fatctl box resize alpha cx23" in found["type"].advice
    relabel = found["labels"]
    assert relabel.action == RELABEL and relabel.ref == "10"
    assert dict(relabel.params)["plan"] == "managed"


def test_missing_server_and_ips_need_a_person() -> None:
    found = diff(views(servers=(), ips=()))
    kinds = {(f.kind, f.resource) for f in found}
    assert ("missing", "server") in kinds
    assert ("missing", "primary_ip ipv4") in kinds and ("missing", "primary_ip ipv6") in kinds
    assert not any(f.fixable for f in found if not f.resource.startswith("dns"))


def test_unassigned_ip_duplicate_servers_and_wrong_id() -> None:
    loose = (replace(ips()[0], assignee_id=""), ips()[1])
    assert ("drift", "primary_ip 101 (192.0.2.10)", "alpha", "") in summary(views(ips=loose))
    two = (server(), server(id="12"))
    found = diff(views(servers=two, ips=None, records=None, health=None))
    assert [(f.kind, f.resource) for f in found] == [("drift", "server")]
    other = diff(views(servers=(server(id="13"),), ips=None, records=None, health=None))
    assert "database records server 10, Hetzner has 13" in other[0].detail


def test_unhealthy_unreachable_and_version_drift() -> None:
    sick = BoxHealth("alpha", True, False, "2026.9.6", "gateway not running")
    found = diff(views(health=(sick,)))
    assert [(f.kind, f.fixable) for f in found] == [("unhealthy", False)]
    assert "fatctl ssh alpha" in found[0].advice
    gone = diff(views(health=(BoxHealth("alpha", False, False, "", "timed out"),)))
    assert gone[0].detail == "unreachable: timed out"
    old = diff(views(health=(healthy(version="2026.9.5"),)))
    assert [(f.kind, f.resource) for f in old] == [("drift", "runtime")]
    assert "fatctl upgrade --to 2026.9.6 --agents alpha" in old[0].advice
    off = diff(views(servers=(server(status="off"),)))
    assert [(f.kind, f.advice) for f in off] == [("unhealthy", "`fatctl box on alpha`")]


def test_scoped_run_does_not_call_other_agents_resources_orphans() -> None:
    v = views(servers=(server(), server("other", id="50")), records=records() + records("other"))
    assert diff(replace(v, scoped=True)) == []
    assert len(diff(v)) == 3


def test_views_not_looked_at_report_nothing() -> None:
    assert diff(Views(domain=D, agents=(agent(),))) == []


def test_pulumi_stack_drift_and_failed_check() -> None:
    stacks = (StackDrift("alpha", ("server update: server_type cx23 -> cx33",)),
              StackDrift("beta", (), "stack agent-beta is locked"))  # fmt: skip
    found = diff(views(stacks=stacks))
    assert [(f.kind, f.agent, f.fixable) for f in found] == [
        ("drift", "alpha", False), ("drift", "beta", False)
    ]  # fmt: skip
    assert "pulumi refresh --stack agent-alpha" in found[0].advice
    assert "drift check failed" in found[1].detail


def test_every_finding_row_is_json_ready() -> None:
    found = diff(views(servers=(server(server_type="cx33"),), records=records()[1:]))
    rows = [f.row() for f in found]
    assert {r["kind"] for r in rows} == {"missing", "drift"}
    assert all(set(r) == {"kind", "resource", "agent", "detail", "fixable", "action", "advice"}
               for r in rows)  # fmt: skip


def firewall(name: str = "alpha", applied: tuple[str, ...] = ("10",), **kw: object) -> Any:
    from fatctl.services.reconcile.views import CloudFirewall

    labels = {"managed-by": "fatctl", "agent": name}
    return replace(CloudFirewall("70", f"fatctl-{name}", applied, labels), **kw)  # type: ignore[arg-type]


def test_firewalls_orphan_missing_and_not_applied() -> None:
    from fatctl.services.reconcile.views import FW_DELETE

    assert diff(views(firewalls=(firewall(),))) == []
    idle = firewall("ghost", applied=(), id="71")
    guarding = firewall("ghost2", applied=("99",), id="72")
    found = {f.resource: f for f in diff(views(firewalls=(firewall(), idle, guarding)))}
    assert found["firewall 71 (fatctl-ghost)"].action == FW_DELETE  # protects nothing
    assert not found["firewall 72 (fatctl-ghost2)"].fixable  # still guards a server
    assert "server 99" in found["firewall 72 (fatctl-ghost2)"].advice
    assert summary(views(firewalls=())) == [("missing", "firewall", "alpha", "")]
    loose = diff(views(firewalls=(firewall(applied=()),)))
    assert [(f.kind, f.detail) for f in loose] == [("drift", "not applied to server 10")]
    assert "fatctl apply --agents alpha" in loose[0].advice


def test_addresses_compare_as_addresses() -> None:
    spelled = (records()[0], replace(records()[1], content="2001:DB8:0:0::1"))
    assert diff(views(records=spelled)) == []
