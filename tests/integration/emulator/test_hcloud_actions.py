"""The rest of the server, primary IP, firewall and image calls through the hcloud SDK:
rebuild, change_type, rescue, snapshots with labels, reverse DNS, protection, primary IP
assign/unassign, firewall rules and targets, pricing, and the servers' action lists."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from hcloud import APIException
from hcloud.firewalls.domain import FirewallResource, FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers.domain import ServerCreatePublicNetwork


@pytest.fixture
def server(hcloud_client):
    resp = hcloud_client.servers.create(
        name="box",
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        location=Location(name="hel1"),
    )
    resp.action.wait_until_finished()
    return hcloud_client.servers.get_by_id(resp.server.id)


def test_rebuild_change_type_rescue(hcloud_client, server):
    rebuilt = server.rebuild(Image(name="debian-13"))
    rebuilt.action.wait_until_finished()
    assert hcloud_client.servers.get_by_id(server.id).image.name == "debian-13"
    with pytest.raises(APIException) as err:
        server.change_type(ServerType(name="cx33"), upgrade_disk=False)
    assert err.value.code == "server_not_stopped"
    server.power_off().wait_until_finished()
    server.change_type(ServerType(name="cx33"), upgrade_disk=False).wait_until_finished()
    assert hcloud_client.servers.get_by_id(server.id).server_type.name == "cx33"
    rescue = server.enable_rescue()
    rescue.action.wait_until_finished()
    assert rescue.root_password and hcloud_client.servers.get_by_id(server.id).rescue_enabled


def test_snapshot_with_labels(hcloud_client, server):
    made = server.create_image(
        description="golden", type="snapshot", labels={"fatctl/golden": "2026.9.6"}
    )
    assert made.image.status == "creating"
    made.action.wait_until_finished()
    snaps = hcloud_client.images.get_all(type=["snapshot"], label_selector="fatctl/golden")
    assert [(i.id, i.status, i.created_from.id) for i in snaps] == [
        (made.image.id, "available", server.id)
    ]
    relabeled = hcloud_client.images.update(snaps[0], labels={"fatctl/golden": "old"})
    assert relabeled.labels == {"fatctl/golden": "old"}
    assert hcloud_client.images.delete(snaps[0]) is True
    assert hcloud_client.images.get_all(type=["snapshot"]) == []


def test_reverse_dns_and_protection(hcloud_client, server):
    ipv4 = server.public_net.ipv4.ip
    server.change_dns_ptr(ipv4, "agent.sandbox.test").wait_until_finished()
    assert hcloud_client.servers.get_by_id(server.id).public_net.ipv4.dns_ptr == (
        "agent.sandbox.test"
    )
    ipv6 = str(ipaddress.ip_network(server.public_net.ipv6.ip)[1])  # canonical text form
    server.change_dns_ptr(ipv6, "agent6.sandbox.test").wait_until_finished()
    ptrs = hcloud_client.servers.get_by_id(server.id).public_net.ipv6.dns_ptr
    assert ptrs == [{"ip": ipv6, "dns_ptr": "agent6.sandbox.test"}]
    with pytest.raises(APIException) as err:
        server.change_dns_ptr("10.0.0.1", "elsewhere.test")
    assert err.value.code == "invalid_input"
    server.change_protection(delete=True, rebuild=False).wait_until_finished()
    assert hcloud_client.servers.get_by_id(server.id).protection == {
        "delete": True,
        "rebuild": False,
    }
    actions = server.get_actions()
    assert {a.command for a in actions} >= {"create_server", "change_dns_ptr", "change_protection"}
    assert all(a.status == "success" for a in actions)


def test_primary_ip_assign_unassign(hcloud_client, server):
    spare = hcloud_client.primary_ips.create(
        type="ipv4", name="spare", location=Location(name="hel1")
    ).primary_ip
    old = server.public_net.primary_ipv4
    with pytest.raises(APIException) as err:
        hcloud_client.primary_ips.unassign(old)
    assert err.value.code == "server_not_stopped"
    server.power_off().wait_until_finished()
    hcloud_client.primary_ips.unassign(old).wait_until_finished()
    hcloud_client.primary_ips.assign(spare, server.id, "server").wait_until_finished()
    server.power_on().wait_until_finished()
    now = hcloud_client.servers.get_by_id(server.id)
    assert now.public_net.ipv4.ip == spare.ip
    assert hcloud_client.primary_ips.get_by_id(old.id).assignee_id is None
    hcloud_client.primary_ips.change_dns_ptr(
        spare, spare.ip, "box.sandbox.test"
    ).wait_until_finished()
    assert hcloud_client.primary_ips.get_by_id(spare.id).dns_ptr == [
        {"ip": spare.ip, "dns_ptr": "box.sandbox.test"}
    ]
    with pytest.raises(APIException) as err:
        hcloud_client.primary_ips.change_dns_ptr(spare, "10.0.0.9", "nope.test")
    assert err.value.code == "invalid_input"
    elsewhere = hcloud_client.primary_ips.create(
        type="ipv4", name="far", location=Location(name="ash")
    ).primary_ip
    with pytest.raises(APIException) as err:
        hcloud_client.servers.create(
            name="mismatch",
            server_type=ServerType(name="cpx22"),
            image=Image(name="debian-12"),
            location=Location(name="hel1"),
            public_net=ServerCreatePublicNetwork(ipv4=elsewhere, enable_ipv6=False),
        )
    assert err.value.code == "primary_ip_datacenter_mismatch"  # POST /servers documents it


def test_firewall_rules_and_targets(hcloud_client, server):
    fw = hcloud_client.firewalls.create(name="edge").firewall
    rules = [
        FirewallRule(
            direction="in",
            protocol="tcp",
            port="443",
            source_ips=["0.0.0.0/0", "::/0"],
            description="https",
        )
    ]
    assert len(fw.set_rules(rules)) == 1
    fw.apply_to_resources([FirewallResource(type="server", server=server)])
    with pytest.raises(APIException) as err:
        hcloud_client.firewalls.delete(fw)
    assert err.value.code == "resource_in_use"
    got = hcloud_client.firewalls.get_by_id(fw.id)
    assert [(r.port, r.description) for r in got.rules] == [("443", "https")]
    assert got.applied_to[0].server.id == server.id
    fw.remove_from_resources([FirewallResource(type="server", server=server)])
    assert hcloud_client.firewalls.delete(fw) is True


def test_pricing_and_bad_json(hetzner_emulator, hcloud_client):
    pricing = hcloud_client.request("GET", "/pricing")["pricing"]
    cx23 = next(t for t in pricing["server_types"] if t["name"] == "cx23")
    fsn1 = next(p for p in cx23["prices"] if p["location"] == "fsn1")
    assert float(fsn1["price_monthly"]["net"]) > 0
    assert float(fsn1["price_monthly"]["gross"]) > float(fsn1["price_monthly"]["net"])
    broken = httpx.post(
        f"{hetzner_emulator.url}/servers",
        content=b"{nope",
        headers={
            "Authorization": f"Bearer {hetzner_emulator.token}",
            "Content-Type": "application/json",
        },
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "json_error"


def test_action_lookups_by_resource(hcloud_client, server):
    ip = server.public_net.primary_ipv4
    assign = hcloud_client.primary_ips.change_protection(ip, delete=True)
    assign.wait_until_finished()
    assert [a.id for a in hcloud_client.primary_ips.get_actions(ip)] == [assign.id]
    assert hcloud_client.primary_ips.actions.get_by_id(assign.id).command == "change_protection"
    created = hcloud_client.servers.get_actions(server, status=["success"])
    assert created[0].command == "create_server"
    assert hcloud_client.servers.actions.get_by_id(created[0].id).id == created[0].id
    with pytest.raises(APIException) as err:
        hcloud_client.firewalls.actions.get_by_id(created[0].id)  # a server action
    assert err.value.code == "not_found"
    server_actions = hcloud_client.servers.actions.get_all()
    assert created[0].id in {a.id for a in server_actions}
    assert assign.id not in {a.id for a in server_actions}
