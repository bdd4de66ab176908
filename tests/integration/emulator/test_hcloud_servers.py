"""The official hcloud SDK against the Hetzner emulator: servers, primary IPs, firewalls,
actions, power, delete — unchanged SDK calls, real uvicorn on loopback."""

from __future__ import annotations

import ipaddress

import pytest
from hcloud import APIException
from hcloud.firewalls.domain import (
    FirewallResource,
    FirewallResourceLabelSelector,
    FirewallRule,
)
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers.domain import ServerCreatePublicNetwork

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEdZxU6tp4v3b8c2xz3dl7M9c5Q8lKfPf7kQyE4gH2Yo t"


def _create(client, name="agent-a", **extra):
    return client.servers.create(
        name=name,
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        location=Location(name="fsn1"),
        **extra,
    )


def test_catalog_lists(hcloud_client):
    assert {t.name for t in hcloud_client.server_types.get_all()} == {
        "cx23",
        "cx33",
        "cpx22",
        "cax11",
    }
    assert [loc.name for loc in hcloud_client.locations.get_all()] == [
        "fsn1",
        "nbg1",
        "hel1",
        "ash",
        "hil",
        "sin",
    ]
    cx23 = hcloud_client.server_types.get_by_name("cx23")
    assert cx23.cores == 2 and cx23.architecture == "x86"
    assert {p["location"] for p in cx23.prices} == {"fsn1", "nbg1", "hel1"}
    image = hcloud_client.images.get_by_name_and_architecture("debian-13", "arm")
    assert image.os_version == "13" and image.type == "system"


def test_create_with_primary_ips_and_firewall(hcloud_client):
    key = hcloud_client.ssh_keys.create(name="ops", public_key=PUBKEY)
    v4 = hcloud_client.primary_ips.create(
        type="ipv4", name="a-v4", location=Location(name="fsn1")
    ).primary_ip
    v6 = hcloud_client.primary_ips.create(
        type="ipv6", name="a-v6", location=Location(name="fsn1")
    ).primary_ip
    rule = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0"])
    fw = hcloud_client.firewalls.create(name="agents", rules=[rule]).firewall
    resp = _create(
        hcloud_client,
        ssh_keys=[key],
        firewalls=[fw],
        labels={"managed-by": "fatctl", "agent": "a"},
        user_data="#cloud-config\n",
        public_net=ServerCreatePublicNetwork(ipv4=v4, ipv6=v6),
    )
    assert resp.root_password is None  # ssh keys given
    assert resp.action.command == "create_server" and resp.action.status == "running"
    assert [a.command for a in resp.next_actions] == ["start_server"]
    resp.action.wait_until_finished()
    server = hcloud_client.servers.get_by_id(resp.server.id)
    assert server.status == "running"
    assert server.public_net.ipv4.ip == v4.ip
    assert v4.ip == "10.77.0.2"  # .0 is the network, .1 the sandbox gateway
    assert server.public_net.primary_ipv4.id == v4.id
    assert server.public_net.ipv6.ip == v6.ip and "/" in v6.ip
    # Hetzner gives each server a /64 (the document's example `ip`: "2001:db8::/64")
    assert ipaddress.ip_network(v6.ip).prefixlen == 64
    assert ipaddress.ip_network(v6.ip).subnet_of(ipaddress.ip_network("fd77::/48"))
    assert [f.firewall.id for f in server.public_net.firewalls] == [fw.id]
    assert hcloud_client.primary_ips.get_by_id(v4.id).assignee_id == server.id


def test_power_cycle_reboot_and_delete_keeps_manual_ips(hetzner_emulator, hcloud_client):
    v4 = hcloud_client.primary_ips.create(
        type="ipv4", name="keep-v4", location=Location(name="fsn1")
    ).primary_ip
    resp = _create(hcloud_client, public_net=ServerCreatePublicNetwork(ipv4=v4))
    resp.action.wait_until_finished()
    server = hcloud_client.servers.get_by_id(resp.server.id)
    auto_v6 = server.public_net.primary_ipv6.id
    server.power_off().wait_until_finished()
    assert hcloud_client.servers.get_by_id(server.id).status == "off"
    server.power_on().wait_until_finished()
    assert hcloud_client.servers.get_by_id(server.id).status == "running"
    server.reboot().wait_until_finished()
    server.delete().wait_until_finished()
    assert hcloud_client.servers.get_all() == []
    held = hetzner_emulator.inventory()
    assert held["servers"] == [] and [ip["id"] for ip in held["primary_ips"]] == [v4.id]
    kept = hcloud_client.primary_ips.get_by_id(v4.id)
    assert kept.assignee_id is None  # auto_delete=False: survives the server
    with pytest.raises(APIException) as err:
        hcloud_client.primary_ips.get_by_id(auto_v6)  # auto-created: auto_delete=True
    assert err.value.code == "not_found"


def test_firewall_by_label_selector_applies(hcloud_client):
    resp = _create(hcloud_client, labels={"role": "agent"})
    resp.action.wait_until_finished()
    sel = FirewallResource(
        type="label_selector", label_selector=FirewallResourceLabelSelector(selector="role=agent")
    )
    created = hcloud_client.firewalls.create(name="by-label", resources=[sel])
    server = hcloud_client.servers.get_by_id(resp.server.id)
    assert [f.firewall.id for f in server.public_net.firewalls] == [created.firewall.id]
    fw = hcloud_client.firewalls.get_by_id(created.firewall.id)
    assert fw.applied_to[0].applied_to_resources[0].server.id == server.id
