"""fatctl's hcloud engine adopting primary IPs it did not create itself, against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hcloud.locations import Location

from fatctl.infra.desired import desired_box
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
from tests.integration.engines.conftest import Recorder, agent_spec, emulator_settings


def _engine(emulator: Any, tmp_path: Path, recorder: Recorder) -> HcloudEngine:
    settings = emulator_settings(emulator, tmp_path)
    return HcloudEngine(settings, timing=Timing.instant(), on_change=recorder, sleep=lambda s: None)


def test_adopting_an_auto_deleting_ip_turns_auto_delete_off(
    hetzner_emulator: Any, hcloud_client: Any, tmp_path: Path
) -> None:
    """hcloud-python 2.27 `BoundPrimaryIP` has `update(auto_delete=None, labels=None,
    name=None)` ("Updates the name, auto_delete or labels of a Primary IP.", a `PUT
    /primary_ips/{id}`) and no `change_auto_delete`: the old `_keep_ip` called
    `ip.change_auto_delete(False)` and crashed with AttributeError on an IP made with
    auto-delete on (by the console, another tool, or an older fatctl)."""
    spec = agent_spec()
    box = desired_box(spec)
    for family, name in (("ipv4", box.ipv4_name), ("ipv6", box.ipv6_name)):
        hcloud_client.primary_ips.create(
            type=family,
            name=name,
            location=Location(name=box.location),
            auto_delete=True,
            labels=box.labels,
        )
    recorder = Recorder()
    info = _engine(hetzner_emulator, tmp_path, recorder).apply(spec, user_data="#cloud-config\n")
    assert recorder.actions()[f"primary_ip:{box.ipv4_name}"] == "same"  # adopted, not created
    for ip_id in (info.primary_ipv4_id, info.primary_ipv6_id):
        ip = hcloud_client.primary_ips.get_by_id(int(ip_id))
        assert ip.auto_delete is False and ip.protection["delete"] is True
        assert ip.assignee_id == int(info.server_id) and ip.assignee_type == "server"
    assert len(hcloud_client.primary_ips.get_all()) == 2  # no auto-created spares


def test_the_emulator_offers_no_change_auto_delete_action(hetzner_emulator: Any) -> None:
    """Hetzner documents the Primary IP actions assign, change_dns_ptr, change_protection and
    unassign (POST /primary_ips/{id}/actions/...); auto-delete is changed by `PUT
    /primary_ips/{id}` ("auto_delete: Auto deletion state. If enabled the Primary IP will be
    deleted once the assigned resource gets deleted.")."""
    import httpx

    headers = {"Authorization": f"Bearer {hetzner_emulator.token}"}
    with httpx.Client(base_url=hetzner_emulator.url, headers=headers) as api:
        ip = api.post("/primary_ips", json={"name": "ip", "type": "ipv4", "location": "fsn1"})
        ip_id = ip.json()["primary_ip"]["id"]
        verb = api.post(f"/primary_ips/{ip_id}/actions/change_auto_delete", json={})
        assert verb.status_code == 404 and verb.json()["error"]["code"] == "not_found"
        updated = api.put(f"/primary_ips/{ip_id}", json={"auto_delete": True})
        assert updated.status_code == 200 and updated.json()["primary_ip"]["auto_delete"] is True


def test_operator_ipv6_blocks_are_declared_canonical(
    hetzner_emulator: Any, hcloud_client: Any, tmp_path: Path
) -> None:
    """Hetzner's firewall rule `source_ips`: "IPv6 CIDRs will be transformed to their canonical
    form according to RFC5952". fatctl declared the operator's text as given, so a rerun read
    `2001:db8::/32` back against `2001:DB8:0::/32` and rewrote the rules on every converge."""
    spec = agent_spec(operator_cidrs=("2001:DB8:0::/32", "198.51.100.0/24"))
    recorder = Recorder()
    engine = _engine(hetzner_emulator, tmp_path, recorder)
    engine.apply(spec)
    recorder.clear()
    engine.apply(spec)
    assert {c.action for c in recorder.changes} == {"same"}, recorder.changes


def test_an_operator_block_with_host_bits_is_refused_before_any_call(
    hetzner_emulator: Any, hcloud_client: Any, tmp_path: Path
) -> None:
    """Rule `source_ips`: "The CIDR blocks may refer to networks (with empty host bits) or
    single hosts"; Hetzner refuses `198.51.100.7/24` with invalid_input. fatctl met that
    refusal at the firewall, after uploading keys; now it is bad input, said up front."""
    from fatctl.errors import BadInput

    spec = agent_spec(operator_cidrs=("198.51.100.7/24",))
    engine = _engine(hetzner_emulator, tmp_path, Recorder())
    with pytest.raises(BadInput, match=r"198\.51\.100\.7/24.*host bits.*198\.51\.100\.0/24"):
        engine.apply(spec)
    assert hcloud_client.ssh_keys.get_all() == [] and hcloud_client.firewalls.get_all() == []
