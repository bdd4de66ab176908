"""Parity: the Pulumi program (under mocks) and the hcloud engine (against the emulator) make
the same resources for the same AgentSpec: types, names, labels, firewall rules, IP wiring,
protection and reverse DNS. Both sides are normalised into one plain structure and compared.

SSH keys are fleet-level: the hcloud engine ensures them at the emulator, and the program's
`getSshKeys` lookup is answered by the emulator itself (its label-selector implementation), so
both sides must boot the server with the same fleet keys. user_data, which Hetzner does not
report back, is covered by the stack tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from fatctl.domain import AgentSpec, ServicePlan
from fatctl.infra.hcloud.engine import HcloudEngine
from tests.integration.engines.conftest import agent_spec, emulator_lookup
from tests.stacks.harness import Registered, by_type, run_program


def _rules(rules: list[Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            r["direction"],
            r["protocol"],
            r.get("port"),
            tuple(sorted(r.get("sourceIps") or [])),
            r.get("description"),
        )
        for r in rules
    )


def _key_rows(keys: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((k.id, k.name, k.public_key, tuple(sorted(k.labels.items()))) for k in keys)


def from_pulumi(regs: list[Registered], client: Any) -> dict[str, Any]:
    names = {r.id: r.name for r in regs}
    server = by_type(regs, "server")[0].inputs
    ips = {r.inputs["type"]: r for r in by_type(regs, "primaryIp")}
    net = server["publicNets"][0]
    fw = by_type(regs, "firewall")[0].inputs
    assert by_type(regs, "sshKey") == []  # the program owns no key
    return {
        "ssh_keys": _key_rows([client.ssh_keys.get_by_id(int(i)) for i in server["sshKeys"]]),
        "firewall": {"name": fw["name"], "labels": fw["labels"], "rules": _rules(fw["rules"])},
        "primary_ips": {
            fam: {
                "name": r.inputs["name"],
                "labels": r.inputs["labels"],
                "auto_delete": r.inputs["autoDelete"],
                "delete_protection": r.inputs["deleteProtection"],
                "location": r.inputs["location"],
                # neither side declares assignee_type (it goes only with an assignee_id)
                "assignee_type": r.inputs.get("assigneeType"),
            }
            for fam, r in ips.items()
        },
        "server": {
            "name": server["name"],
            "type": server["serverType"],
            "image": server["image"],
            "location": server["location"],
            "labels": server["labels"],
            "backups": server["backups"],
            "protection": {
                "delete": server["deleteProtection"],
                "rebuild": server["rebuildProtection"],
            },
            "firewalls": [names[str(int(f))] for f in server["firewallIds"]],
            "ipv4": names[str(int(net["ipv4"]))],
            "ipv6": names[str(int(net["ipv6"]))],
        },
        "rdns": sorted(
            (names[str(int(r.inputs["primaryIpId"]))], r.inputs["dnsPtr"])
            for r in by_type(regs, "rdns")
        ),
    }


def _ptr(ip: Any) -> str:
    found = [p["dns_ptr"] for p in ip.dns_ptr or [] if ip.type == "ipv6" or p["ip"] == ip.ip]
    return found[-1] if found else ""


def from_hetzner(client: Any, emulator: Any, name: str) -> dict[str, Any]:
    sel = f"managed-by=fatctl,agent={name}"
    (server,) = client.servers.get_all(label_selector=sel)
    (stored,) = [s for s in emulator.inventory()["servers"] if s["name"] == name]
    (fw,) = client.firewalls.get_all(label_selector=sel)
    ips = {ip.type: ip for ip in client.primary_ips.get_all(label_selector=sel)}
    ip_names = {ip.id: ip.name for ip in ips.values()}
    rules = [
        {
            "direction": r.direction,
            "protocol": r.protocol,
            "port": r.port,
            "sourceIps": r.source_ips,
            "description": r.description,
        }
        for r in fw.rules
    ]
    return {
        "ssh_keys": _key_rows([client.ssh_keys.get_by_id(i) for i in stored["ssh_keys"]]),
        "firewall": {"name": fw.name, "labels": fw.labels, "rules": _rules(rules)},
        "primary_ips": {
            fam: {
                "name": ip.name,
                "labels": ip.labels,
                "auto_delete": ip.auto_delete,
                "delete_protection": ip.protection["delete"],
                "location": ip.location.name,
                "assignee_type": None,  # what the engine sent: see the program side
            }
            for fam, ip in ips.items()
        },
        "server": {
            "name": server.name,
            "type": server.server_type.name,
            "image": server.image.name,
            "location": server.location.name,
            "labels": server.labels,
            "backups": bool(server.backup_window),
            "protection": {
                "delete": server.protection["delete"],
                "rebuild": server.protection["rebuild"],
            },
            "firewalls": [f.firewall.name for f in server.public_net.firewalls],
            "ipv4": ip_names[server.public_net.primary_ipv4.id],
            "ipv6": ip_names[server.public_net.primary_ipv6.id],
        },
        "rdns": sorted((ip.name, _ptr(ip)) for ip in ips.values()),
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"plan": ServicePlan.BYOK, "customer_keys": (), "location": "hel1", "server_type": "cax11"},
    ],
    ids=["managed", "byok-no-customer-key"],
)
def test_pulumi_program_and_hcloud_engine_agree(
    engine: HcloudEngine, hcloud_client: Any, hetzner_emulator: Any, overrides: dict[str, Any]
) -> None:
    spec: AgentSpec = agent_spec(**overrides)
    engine.apply(spec, user_data="#cloud-config\n")  # also ensures the fleet keys
    regs, _ = run_program(spec, user_data="#cloud-config\n", lookup=emulator_lookup(hcloud_client))
    pulumi_side = from_pulumi(regs, hcloud_client)
    hetzner_side = from_hetzner(hcloud_client, hetzner_emulator, spec.name)
    for section in pulumi_side:
        assert pulumi_side[section] == hetzner_side[section], section
    assert pulumi_side["server"]["type"] == spec.server_type  # not trivially equal: both real
    assert len(pulumi_side["ssh_keys"]) == len(spec.operator_keys) + len(spec.customer_keys)
