"""The agent stack under Pulumi mocks: every resource, property, wiring and option."""

from __future__ import annotations

from typing import Any

import pytest

from fatctl.domain import AgentSpec, ServicePlan
from fatctl.errors import ConfigError
from fatctl.infra.desired import key_fingerprint
from stacks.agent.options import primary_ip_resource_options, server_resource_options
from stacks.agent.stack_config import spec_from_config
from tests.stacks.harness import (
    GET_SSH_KEYS,
    Registered,
    by_type,
    fleet_of,
    run_main,
    run_program,
)

OP_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKeyMaterial000000000000000000000 op@ops"
Run = tuple[list[Registered], dict[str, Any]]
CU_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICustomerKeyMaterial000000000000000000000 me@home"


def make_spec(**overrides: object) -> AgentSpec:
    base: dict[str, object] = dict(
        name="alice",
        agent_id="a-001",
        owner_email="Alice@Example.com",
        plan=ServicePlan.MANAGED,
        domain="agents.example.net",
        server_type="cpx22",
        location="nbg1",
        image="debian-13",
        operator_keys=(OP_KEY,),
        customer_keys=(CU_KEY,),
        operator_cidrs=("198.51.100.0/24", "2001:db8:ff::/48"),
    )
    base.update(overrides)
    return AgentSpec(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run() -> Run:
    return run_program(make_spec(), user_data="#cloud-config\nhostname: alice\n")


def the(regs: list[Registered], short: str) -> Registered:
    found = by_type(regs, short)
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def test_resource_inventory(run: Run) -> None:
    regs, _ = run
    counts = {
        t: len(by_type(regs, t)) for t in ("sshKey", "firewall", "primaryIp", "server", "rdns")
    }
    # SSH keys are fleet-level: looked up, never owned (a destroy must not delete shared keys).
    assert counts == {"sshKey": 0, "firewall": 1, "primaryIp": 2, "server": 1, "rdns": 2}


def test_fleet_keys_are_looked_up_by_fingerprint_label() -> None:
    invokes: list[tuple[str, dict[str, Any]]] = []
    run_program(make_spec(), invokes=invokes)
    ((token, args),) = invokes
    assert token == GET_SSH_KEYS
    fps = f"{key_fingerprint(OP_KEY)},{key_fingerprint(CU_KEY)}"
    assert args["withSelector"] == f"managed-by=fatctl,fatctl-key in ({fps})"


def test_missing_fleet_key_fails_the_update_but_not_a_preview() -> None:
    only_operator = fleet_of(make_spec(customer_keys=()))
    with pytest.raises(Exception, match="fleet ssh keys not found at Hetzner: fatctl-key-"):
        run_program(make_spec(), lookup=only_operator)
    regs, _ = run_program(make_spec(), lookup=only_operator, preview=True)
    assert the(regs, "server").inputs["sshKeys"] == ["501"]


def test_firewall_rules(run: Run) -> None:
    regs, _ = run
    fw = the(regs, "firewall")
    rules = {(r["protocol"], r.get("port")): r for r in fw.inputs["rules"]}
    assert set(rules) == {("tcp", "22"), ("tcp", "80"), ("tcp", "443"), ("icmp", None)}
    assert rules[("tcp", "22")]["sourceIps"] == ["198.51.100.0/24", "2001:db8:ff::/48"]
    for key in (("tcp", "80"), ("tcp", "443"), ("icmp", None)):
        assert rules[key]["sourceIps"] == ["0.0.0.0/0", "::/0"]
    assert all(r["direction"] == "in" for r in fw.inputs["rules"])
    assert fw.inputs["labels"]["managed-by"] == "fatctl"


def test_primary_ips_survive_the_server(run: Run) -> None:
    regs, _ = run
    ips = {r.inputs["type"]: r for r in by_type(regs, "primaryIp")}
    assert set(ips) == {"ipv4", "ipv6"}
    for ip in ips.values():
        assert ip.inputs["autoDelete"] is False
        assert ip.inputs["deleteProtection"] is True
        assert "assigneeType" not in ip.inputs  # only with an assignee (provider warns)
        assert ip.inputs["location"] == "nbg1"
        assert ip.protect and ip.retain_on_delete
        assert ip.inputs["labels"]["agent"] == "alice"


def test_server_properties(run: Run) -> None:
    regs, _ = run
    server = the(regs, "server").inputs
    assert (server["name"], server["serverType"], server["image"], server["location"]) == (
        "alice",
        "cpx22",
        "debian-13",
        "nbg1",
    )
    assert server["labels"] == {
        "managed-by": "fatctl",
        "agent": "alice",
        "owner": "alice_at_example.com",
        "plan": "managed",
    }
    assert server["backups"] is True
    assert server["deleteProtection"] is True and server["rebuildProtection"] is True


def test_user_data_is_a_secret(run: Run) -> None:
    regs, _ = run
    user_data = the(regs, "server").inputs["userData"]
    # A secret crosses the wire wrapped with Pulumi's secret signature, never as a bare string.
    assert isinstance(user_data, dict)
    assert user_data["value"].startswith("#cloud-config")
    assert "1b47061264138c4ac30d75fd1eb44270" in user_data.values()


def test_server_wiring_to_keys_firewall_and_primary_ips(run: Run) -> None:
    regs, _ = run
    server = the(regs, "server").inputs
    ips = {r.inputs["type"]: r for r in by_type(regs, "primaryIp")}
    assert server["sshKeys"] == ["501", "502"]  # the fleet's operator key, then the customer's
    assert [int(x) for x in server["firewallIds"]] == [int(_id(regs, "fatctl-alice"))]
    net = server["publicNets"][0]
    assert net["ipv4Enabled"] and net["ipv6Enabled"]
    assert int(net["ipv4"]) == int(ips["ipv4"].id)
    assert int(net["ipv6"]) == int(ips["ipv6"].id)


def _id(regs: list[Registered], name: str) -> str:
    return next(r.id for r in regs if r.name == name)


def test_reverse_dns_for_both_ips(run: Run) -> None:
    regs, outputs = run
    rdns = {r.name: r.inputs for r in by_type(regs, "rdns")}
    assert {v["dnsPtr"] for v in rdns.values()} == {"alice.agents.example.net"}
    v4 = rdns["alice-rdns-ipv4"]
    assert v4["ipAddress"] == outputs["ipv4"]
    assert int(v4["primaryIpId"]) == int(outputs["primary_ipv4_id"])
    v6 = rdns["alice-rdns-ipv6"]
    assert v6["ipAddress"] == outputs["ipv6"] == "2001:db8:1::1"
    assert int(v6["primaryIpId"]) == int(outputs["primary_ipv6_id"])


def test_outputs(run: Run) -> None:
    regs, outputs = run
    assert outputs["server_id"] == _id(regs, "alice")
    assert outputs["ipv4"].startswith("203.0.113.")
    assert outputs["firewall_id"] == _id(regs, "fatctl-alice")


def test_server_options_reach_the_engine(run: Run) -> None:
    regs, _ = run
    server = the(regs, "server")
    assert sorted(server.ignore_changes) == ["image", "sshKeys", "userData"]
    assert server.protect is True
    for other in by_type(regs, "firewall") + by_type(regs, "rdns"):
        assert other.ignore_changes == [] and not other.protect


def test_server_resource_options_pure() -> None:
    live = server_resource_options()
    assert live.ignore_changes == ("userData", "sshKeys", "image")
    assert live.protect is True and live.retain_on_delete is False
    going = server_resource_options(allow_destroy=True)
    assert going.protect is False and going.ignore_changes == live.ignore_changes
    assert live.as_kwargs() == {
        "ignore_changes": ["userData", "sshKeys", "image"],
        "protect": True,
        "retain_on_delete": False,
    }


def test_primary_ip_options_pure() -> None:
    assert primary_ip_resource_options() == primary_ip_resource_options(allow_destroy=False)
    kept = primary_ip_resource_options(allow_destroy=True)
    assert kept.protect is False and kept.retain_on_delete is True
    released = primary_ip_resource_options(allow_destroy=True, release_ips=True)
    assert released.retain_on_delete is False


def test_destroy_mode_lifts_protection() -> None:
    regs, _ = run_program(make_spec(), allow_destroy=True, release_ips=True)
    server = the(regs, "server")
    assert server.protect is False
    assert server.inputs["deleteProtection"] is False
    for ip in by_type(regs, "primaryIp"):
        assert ip.inputs["deleteProtection"] is False and not ip.retain_on_delete


def test_byok_without_customer_keys_has_no_backups_and_one_key() -> None:
    spec = make_spec(plan=ServicePlan.BYOK, customer_keys=(), operator_keys=(OP_KEY, OP_KEY))
    regs, _ = run_program(spec)
    assert the(regs, "server").inputs["backups"] is False
    assert the(regs, "server").inputs["sshKeys"] == ["501"]


def test_explicit_provider_for_the_sandbox() -> None:
    regs, _ = run_program(make_spec(), provider_endpoint="http://127.0.0.1:9/v1")
    providers = [r for r in regs if r.typ == "pulumi:providers:hcloud"]
    assert len(providers) == 1
    assert providers[0].inputs["endpoint"] == "http://127.0.0.1:9/v1"


def test_spec_from_stack_config() -> None:
    config = {
        "name": "bob",
        "agentId": "b-1",
        "ownerEmail": "b@x.org",
        "domain": "d.test",
        "plan": "byok",
        "serverType": "cax11",
        "operatorKeys": f"{OP_KEY}, {CU_KEY}",
        "operatorCidrs": "10.0.0.0/8",
    }
    spec = spec_from_config(config.get)
    assert (spec.name, spec.plan, spec.server_type, spec.location) == (
        "bob",
        ServicePlan.BYOK,
        "cax11",
        "fsn1",
    )
    assert spec.operator_keys == (OP_KEY, CU_KEY)
    assert spec.operator_cidrs == ("10.0.0.0/8",)
    with pytest.raises(ConfigError, match="agent:domain"):
        spec_from_config({k: v for k, v in config.items() if k != "domain"}.get)
    with pytest.raises(ConfigError, match="plan"):
        spec_from_config({**config, "plan": "gold"}.get)


def test_hand_run_entry_point_declares_the_same_stack() -> None:
    config = {
        "agent:name": "alice",
        "agent:agentId": "a-001",
        "agent:ownerEmail": "Alice@Example.com",
        "agent:domain": "agents.example.net",
        "agent:serverType": "cpx22",
        "agent:location": "nbg1",
        "agent:image": "debian-13",
        "agent:operatorKeys": OP_KEY,
        "agent:customerKeys": CU_KEY,
        "agent:operatorCidrs": "198.51.100.0/24,2001:db8:ff::/48",
    }
    by_main = run_main(config, fleet_of(make_spec()))
    by_function, _ = run_program(make_spec())

    def shape(regs: list[Registered]) -> list[tuple[str, str, str]]:
        ignore = {"userData", "firewallIds", "publicNets", "primaryIpId", "ipAddress"}
        return sorted(
            (r.typ, r.name, repr(sorted((k, v) for k, v in r.inputs.items() if k not in ignore)))
            for r in regs
        )

    assert shape(by_main) == shape(by_function)
    assert len(by_main) == 6
