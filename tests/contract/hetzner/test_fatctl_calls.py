"""The calls fatctl makes, driven through its hcloud engine and the SDK against the emulator,
with every exchange checked against Hetzner's OpenAPI document: the request body fatctl sends,
the status and body the emulator answers, errors included."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hcloud import APIException
from hcloud.firewalls import FirewallResource
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType

from fatctl.infra.desired import desired_box
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
from tests.contract.hetzner import openapi, recorder
from tests.integration.engines.conftest import Recorder, agent_spec, emulator_settings


@pytest.fixture
def engine(hetzner_emulator: Any, tmp_path: Path) -> HcloudEngine:
    settings = emulator_settings(hetzner_emulator, tmp_path)
    return HcloudEngine(
        settings, timing=Timing.instant(), on_change=Recorder(), sleep=lambda s: None
    )


@pytest.fixture
def exchanges(hetzner_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return recorder.record(monkeypatch, hetzner_emulator.url)


def _paths(exchanges: list[Any]) -> set[str]:
    return {f"{e.method} {openapi.operation(e.method, e.path).template}" for e in exchanges}


def test_an_agents_life_follows_the_document(
    engine: HcloudEngine, exchanges: list[Any], hcloud_client: Any
) -> None:
    """Provision (keys, firewall, primary IPs, server), adopt on a rerun, operate (power,
    reboot, snapshot, rebuild, rescue, resize), then destroy keeping and releasing the IPs."""
    spec = agent_spec()
    info = engine.apply(spec, user_data="#cloud-config\n")
    engine.apply(spec)
    fw = hcloud_client.firewalls.get_by_id(int(info.firewall_id))
    server = hcloud_client.servers.get_by_id(int(info.server_id))
    for action in fw.remove_from_resources([FirewallResource(type="server", server=server)]):
        action.wait_until_finished()  # drift: someone detached it; the rerun re-applies it
    spec = replace(spec, operator_cidrs=("2001:DB8::/32",))  # and new rules: set_rules
    engine.apply(spec)
    engine.power_off("alice")
    engine.power_on("alice")
    engine.reboot("alice")
    image = engine.snapshot("alice", "before upgrade", {"agent": "alice", "kind": "pre-upgrade"})
    engine.rebuild(spec, image)
    engine.enable_rescue("alice")
    engine.change_type("alice", "cpx22")
    engine.destroy(spec, release_ips=False)
    engine.destroy(spec, release_ips=True)
    hcloud_client.images.delete(hcloud_client.images.get_by_id(int(image)))
    recorder.assert_conforms(exchanges)
    covered = _paths(exchanges)
    for needed in (
        "POST /ssh_keys",
        "POST /firewalls",
        "POST /primary_ips",
        "POST /servers",
        "GET /servers",
        "GET /actions/{id}",
        "POST /servers/{id}/actions/poweroff",
        "POST /servers/{id}/actions/create_image",
        "POST /servers/{id}/actions/rebuild",
        "POST /servers/{id}/actions/change_type",
        "DELETE /servers/{id}",
        "DELETE /primary_ips/{id}",
        "POST /firewalls/{id}/actions/set_rules",
        "POST /firewalls/{id}/actions/apply_to_resources",
        "POST /firewalls/{id}/actions/remove_from_resources",
    ):
        assert needed in covered, sorted(covered)


def test_adopting_an_auto_deleting_ip_follows_the_document(
    engine: HcloudEngine, exchanges: list[Any], hcloud_client: Any
) -> None:
    """The adoption path: `PUT /primary_ips/{id}` with `auto_delete` and `labels`, and the
    protection action, against their schemas."""
    box = desired_box(agent_spec())
    hcloud_client.primary_ips.create(
        type="ipv4",
        name=box.ipv4_name,
        location=Location(name="fsn1"),
        auto_delete=True,
        labels=box.labels,
    )
    engine.apply(agent_spec())
    recorder.assert_conforms(exchanges)
    assert "PUT /primary_ips/{id}" in _paths(exchanges)
    assert "POST /primary_ips/{id}/actions/change_protection" in _paths(exchanges)


def test_fresh_provisioning_follows_the_document(
    engine: HcloudEngine, exchanges: list[Any]
) -> None:
    """The path a new agent takes: its primary IPs reserved first (DNS points at them), then
    the server created on them without lookups."""
    spec = agent_spec(name="bob")
    engine.key_ids(spec)
    engine.reserve_addresses(spec)
    engine.apply_fresh(spec, user_data="#cloud-config\n")
    recorder.assert_conforms(exchanges)
    assert {"POST /primary_ips", "POST /servers"} <= _paths(exchanges)


def test_catalog_and_action_lists_follow_the_document(
    hcloud_client: Any, exchanges: list[Any]
) -> None:
    """What fatctl reads to check a spec and price a fleet: types, locations, images, the
    action lists, and pages of them (the SDK follows `meta.pagination`)."""
    hcloud_client.server_types.get_all()
    hcloud_client.locations.get_all()
    hcloud_client.images.get_all(type="system", architecture="x86")
    hcloud_client.images.get_by_name_and_architecture("debian-12", "x86")
    hcloud_client.server_types.get_by_name("cx23")
    hcloud_client.locations.get_by_name("fsn1")
    hcloud_client.locations.get_list(page=2, per_page=2)
    hcloud_client.request("GET", "/actions", params={"id": [1, 2]})
    hcloud_client.ssh_keys.get_all(label_selector="managed-by=fatctl")
    hcloud_client.request("GET", "/pricing")
    recorder.assert_conforms(exchanges)


def _refused(call: Any) -> str:
    with pytest.raises(APIException) as err:
        call()
    return str(err.value.code)


def test_errors_follow_the_document(hcloud_client: Any, exchanges: list[Any]) -> None:
    """Errors fatctl meets: each status must be the one the document gives its code, in the
    general table or the operation's own ("Operation specific errors"), and each body must fit
    the 4xx schema."""
    made = hcloud_client.servers.create(
        name="box", server_type=ServerType(name="cx23"), image=Image(name="debian-12")
    )
    made.action.wait_until_finished()
    server = made.server
    refusals = {
        "uniqueness_error": lambda: hcloud_client.servers.create(
            name="box", server_type=ServerType(name="cx23"), image=Image(name="debian-12")
        ),
        "invalid_input": lambda: hcloud_client.firewalls.create(
            name="fw", labels={"hetzner.cloud/x": "y"}
        ),
        "not_found": lambda: hcloud_client.servers.get_by_id(424242),
        "server_not_stopped": lambda: hcloud_client.primary_ips.unassign(
            hcloud_client.servers.get_by_id(server.id).public_net.primary_ipv4
        ),
    }
    assert {code: _refused(call) for code, call in refusals.items()} == {
        code: code for code in refusals
    }
    protect = hcloud_client.servers.change_protection(server, delete=True)
    protect.wait_until_finished()
    assert _refused(lambda: hcloud_client.servers.delete(server)) == "protected"
    recorder.assert_conforms(exchanges)
    assert any(e.status == 422 for e in exchanges) and any(e.status == 423 for e in exchanges)
