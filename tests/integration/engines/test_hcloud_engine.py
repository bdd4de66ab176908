"""The hcloud engine against the sandbox's Hetzner emulator: idempotent apply, plans, destroy."""

from __future__ import annotations

from typing import Any

from fatctl.infra.hcloud.engine import HcloudEngine
from tests.integration.engines.conftest import Recorder, agent_spec


def test_apply_creates_everything_then_adopts(
    engine: HcloudEngine, recorder: Recorder, hcloud_client: Any
) -> None:
    spec = agent_spec()
    info = engine.apply(spec, user_data="#cloud-config\n")
    assert info.status == "running" and info.server_type == "cx23" and info.location == "fsn1"
    assert info.ipv4 and info.ipv6 and info.primary_ipv4_id and info.firewall_id
    created = [c for c in recorder.changes if c.action == "create"]
    assert {c.kind for c in created} == {"ssh_key", "firewall", "primary_ip", "server"}
    recorder.clear()
    again = engine.apply(spec)
    assert again == info
    assert {c.action for c in recorder.changes} == {"same"}, recorder.changes
    sel = "managed-by=fatctl,agent=alice"
    assert len(hcloud_client.servers.get_all(label_selector=sel)) == 1
    assert len(hcloud_client.primary_ips.get_all(label_selector=sel)) == 2
    assert len(hcloud_client.firewalls.get_all(label_selector=sel)) == 1
    assert hcloud_client.ssh_keys.get_all(label_selector=sel) == []  # keys are the fleet's
    assert len(hcloud_client.ssh_keys.get_all(label_selector="managed-by=fatctl,fatctl-key")) == 2


def test_wiring_and_properties_at_hetzner(engine: HcloudEngine, hcloud_client: Any) -> None:
    info = engine.apply(agent_spec(), user_data="#cloud-config\n")
    server = hcloud_client.servers.get_by_id(int(info.server_id))
    assert server.protection == {"delete": True, "rebuild": True}
    assert server.backup_window  # managed plan: backups on
    assert str(server.public_net.primary_ipv4.id) == info.primary_ipv4_id
    ip4 = hcloud_client.primary_ips.get_by_id(int(info.primary_ipv4_id))
    assert ip4.auto_delete is False and ip4.protection["delete"] is True
    assert {p["dns_ptr"] for p in ip4.dns_ptr} == {"alice.agents.example.net"}
    ip6 = hcloud_client.primary_ips.get_by_id(int(info.primary_ipv6_id))
    assert "alice.agents.example.net" in {p["dns_ptr"] for p in ip6.dns_ptr}
    fw = hcloud_client.firewalls.get_by_id(int(info.firewall_id))
    assert [r.server.id for r in fw.applied_to] == [server.id]


def test_plan_of_unchanged_agent_is_empty(engine: HcloudEngine) -> None:
    spec = agent_spec()
    fresh = engine.plan(spec)
    assert fresh.has_changes and fresh.count("create") == 8  # 2 keys, fw, 2 IPs, server, 2 rdns
    engine.apply(spec)
    plan = engine.plan(spec)
    assert not plan.has_changes, [c for c in plan.changes if c.action != "same"]
    # image and user_data differences are ignored, as in the Pulumi program
    assert not engine.plan(agent_spec(image="debian-13")).has_changes


def test_plan_of_server_type_change_is_exactly_that_update(engine: HcloudEngine) -> None:
    engine.apply(agent_spec())
    plan = engine.plan(agent_spec(server_type="cx33"))
    changed = [c for c in plan.changes if c.action != "same"]
    assert len(changed) == 1
    assert (changed[0].kind, changed[0].action) == ("server", "update")
    assert changed[0].detail == "server_type cx23 -> cx33"
    assert not plan.replaces_server


def test_apply_resizes_in_place_and_keeps_ips(engine: HcloudEngine, recorder: Recorder) -> None:
    before = engine.apply(agent_spec())
    recorder.clear()
    after = engine.apply(agent_spec(server_type="cx33"))
    assert after.server_type == "cx33" and after.status == "running"
    assert (after.server_id, after.ipv4, after.ipv6) == (before.server_id, before.ipv4, before.ipv6)
    changed = [(c.kind, c.action) for c in recorder.changes if c.action != "same"]
    assert changed == [("server", "update")]


def test_location_change_is_a_refused_replacement(engine: HcloudEngine) -> None:
    import pytest

    from fatctl.errors import CloudError

    engine.apply(agent_spec())
    plan = engine.plan(agent_spec(location="nbg1"))
    assert plan.replaces_server
    with pytest.raises(CloudError, match="refused") as err:
        engine.apply(agent_spec(location="nbg1"))
    assert err.value.code == "replace_refused"


def test_destroy_is_idempotent_and_keeps_ips(engine: HcloudEngine, hcloud_client: Any) -> None:
    spec = agent_spec()
    first = engine.apply(spec)
    engine.destroy(spec, release_ips=False)
    engine.destroy(spec, release_ips=False)
    assert engine.status(spec) is None
    sel = "managed-by=fatctl,agent=alice"
    assert hcloud_client.servers.get_all(label_selector=sel) == []
    assert hcloud_client.firewalls.get_all(label_selector=sel) == []
    assert len(hcloud_client.primary_ips.get_all(label_selector=sel)) == 2
    again = engine.apply(spec)
    assert (again.ipv4, again.ipv6) == (first.ipv4, first.ipv6)  # the box kept its addresses
    assert again.server_id != first.server_id
    engine.destroy(spec, release_ips=True)
    assert hcloud_client.primary_ips.get_all(label_selector=sel) == []


def test_operational_actions(engine: HcloudEngine, hcloud_client: Any) -> None:
    spec = agent_spec()
    info = engine.apply(spec)
    engine.power_off("alice")
    assert engine.status("alice").status == "off"  # type: ignore[union-attr]
    engine.power_on("alice")
    assert engine.status("alice").status == "running"  # type: ignore[union-attr]
    engine.reboot("alice")
    image_id = engine.snapshot("alice", "before upgrade", {"agent": "alice", "kind": "pre-upgrade"})
    image = hcloud_client.images.get_by_id(int(image_id))
    assert image.type == "snapshot" and image.labels["kind"] == "pre-upgrade"
    rebuilt = engine.rebuild(spec, image_id)
    assert (rebuilt.server_id, rebuilt.ipv4, rebuilt.ipv6) == (info.server_id, info.ipv4, info.ipv6)
    server = hcloud_client.servers.get_by_id(int(info.server_id))
    assert server.protection["rebuild"] is True  # restored after the rebuild
    engine.enable_rescue("alice")
    assert hcloud_client.servers.get_by_id(int(info.server_id)).rescue_enabled is True
    resized = engine.change_type("alice", "cpx22")
    assert resized.server_type == "cpx22" and resized.status == "running"


def test_actions_on_a_missing_agent_say_so(engine: HcloudEngine) -> None:
    import pytest

    from fatctl.errors import NotFound

    with pytest.raises(NotFound, match="ghost"):
        engine.power_on("ghost")
