"""Each error code the hcloud SDK surfaces from the emulator, as `APIException.code`."""

from __future__ import annotations

import pytest
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType


def _create(client, name="agent-a", **extra):
    return client.servers.create(
        name=name, server_type=ServerType(name="cx23"), image=Image(name="debian-12"), **extra
    )


def _code(call) -> str:
    with pytest.raises(APIException) as err:
        call()
    return err.value.code


def _no_backoff(client: Client) -> Client:
    # the SDK retries rate_limit_exceeded/conflict with 1 s..60 s backoff; tests skip the waits
    client._client._retry_interval_func = lambda retries: 0.0
    return client


def test_uniqueness_invalid_and_not_found(hcloud_client):
    _create(hcloud_client).action.wait_until_finished()
    assert _code(lambda: _create(hcloud_client)) == "uniqueness_error"
    assert _code(lambda: _create(hcloud_client, name="bad_name!")) == "invalid_input"
    assert (
        _code(
            lambda: hcloud_client.servers.create(
                name="x", server_type=ServerType(name="cx99"), image=Image(name="debian-12")
            )
        )
        == "invalid_input"
    )
    assert (
        _code(lambda: _create(hcloud_client, name="us", location=Location(name="ash")))
        == "invalid_input"
    )  # cx23 is not sold in Ashburn
    assert (
        _code(lambda: _create(hcloud_client, name="big", user_data="x" * 40000)) == "invalid_input"
    )
    with pytest.raises(APIException) as err:
        hcloud_client.servers.get_by_id(424242)
    assert err.value.code == "not_found" and len(err.value.correlation_id) == 16


def test_locked_while_an_action_runs(hetzner_emulator, hcloud_client):
    hetzner_emulator.set_faults(action_delay=3.0)
    server = _create(hcloud_client).server
    assert _code(lambda: server.power_off()) == "locked"
    assert hcloud_client.servers.get_by_id(server.id).locked is True


def test_protected_server_and_primary_ip(hcloud_client):
    resp = _create(hcloud_client)
    resp.action.wait_until_finished()
    resp.server.change_protection(delete=True, rebuild=True).wait_until_finished()
    assert _code(lambda: resp.server.delete()) == "protected"
    assert _code(lambda: resp.server.rebuild(Image(name="debian-13"))) == "protected"
    ip = hcloud_client.primary_ips.create(type="ipv4", name="p", location=Location(name="nbg1"))
    ip.primary_ip.change_protection(delete=True).wait_until_finished()
    assert _code(lambda: ip.primary_ip.delete()) == "protected"
    ip.primary_ip.change_protection(delete=False).wait_until_finished()
    assert ip.primary_ip.delete() is True


def test_an_assigned_primary_ip_is_not_deleted(hcloud_client):
    """Hetzner's reference, Delete a Primary IP: after 1 May 2026 an assigned Primary IP "needs
    to be unassigned before it can be deleted" (422 `must_be_unassigned`); before, it was
    unassigned automatically."""
    from hcloud.servers import ServerCreatePublicNetwork

    ip = hcloud_client.primary_ips.create(type="ipv4", name="held", location=Location(name="fsn1"))
    net = ServerCreatePublicNetwork(ipv4=ip.primary_ip, enable_ipv6=False)
    resp = _create(hcloud_client, location=Location(name="fsn1"), public_net=net)
    resp.action.wait_until_finished()
    held = hcloud_client.primary_ips.get_by_id(ip.primary_ip.id)
    assert held.assignee_id == resp.server.id
    assert _code(lambda: held.delete()) == "must_be_unassigned"
    resp.server.delete().wait_until_finished()
    assert hcloud_client.primary_ips.get_by_id(held.id).assignee_id is None
    assert held.delete() is True


def test_unauthorized_with_a_wrong_token(hetzner_emulator):
    client = Client(token="wrong", api_endpoint=hetzner_emulator.url)
    assert _code(lambda: client.servers.get_all()) == "unauthorized"


def test_rate_limit_and_conflict_reach_the_sdk(hetzner_emulator, hcloud_client):
    client = _no_backoff(hcloud_client)
    hetzner_emulator.set_faults(rate_limit_burst=10)
    assert _code(lambda: client.servers.get_all()) == "rate_limit_exceeded"
    hetzner_emulator.set_faults(rate_limit_burst=0, conflict_rate=1.0)
    assert (
        _code(lambda: client.ssh_keys.create(name="k", public_key="ssh-ed25519 AAAA")) == "conflict"
    )
    assert hetzner_emulator.stats()["events"]["injected_conflict"] == 6  # 1 call + 5 retries


def test_invalid_label_selector_and_paging_params(hcloud_client):
    assert (
        _code(lambda: hcloud_client.servers.get_list(label_selector="a in (b")) == "invalid_input"
    )
    assert _code(lambda: hcloud_client.servers.get_list(page=0)) == "invalid_input"
