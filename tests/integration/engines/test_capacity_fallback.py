"""Capacity fallback (issue 17): a server type or location Hetzner cannot place no longer fails
the signup; the engine tries the operator's ordered alternatives and says where the box went.
(The emulator's sold-out answers themselves: tests/contract/hetzner/test_capacity_contract.py.)

The emulator's `sold_out` knob follows Hetzner's Cloud API reference (the OpenAPI document in
api-evangelist/hetzner, openapi/_original/hetzner-openapi.yml). Its error table:
"| `412` | `resource_unavailable` | The requested resource is currently unavailable (e.g. not
available for order). |"; and the operation-specific errors of "Create a Server":
"| `422` | `placement_error` | An error during the placement occurred |". Primary IPs are
bound to their location: "| `422` | `primary_ip_datacenter_mismatch` | he specified Primary IP
is in a different datacenter |", so a fallback to another location needs IPs there.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fatctl.errors import CloudError, ConfigError
from fatctl.infra.capacity import Placement, candidates, parse_fallbacks
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
from tests.integration.engines.conftest import Recorder, agent_spec, emulator_settings


def _engine(emulator: Any, tmp_path: Path, recorder: Recorder, fallbacks: str) -> HcloudEngine:
    settings = replace(emulator_settings(emulator, tmp_path), fallbacks=fallbacks)
    return HcloudEngine(settings, timing=Timing.instant(), on_change=recorder, sleep=lambda s: 0)


def test_fresh_create_falls_back_to_another_location_with_its_own_ips(
    hetzner_emulator: Any, tmp_path: Path, recorder: Recorder, hcloud_client: Any
) -> None:
    hetzner_emulator.set_faults(sold_out={"*@fsn1": "resource_unavailable"})
    engine = _engine(hetzner_emulator, tmp_path, recorder, "cx23@nbg1")
    info = engine.apply_fresh(agent_spec(), user_data="#cloud-config\n")
    assert (info.server_type, info.location) == ("cx23", "nbg1")
    ips = hcloud_client.primary_ips.get_all(label_selector="managed-by=fatctl,agent=alice")
    # The fsn1 pair was released; the box's addresses are the nbg1 pair it carries.
    assert sorted(ip.location.name for ip in ips) == ["nbg1", "nbg1"]
    assert {ip.ip for ip in ips if ip.type == "ipv4"} == {info.ipv4}
    assert {str(ip.id) for ip in ips} == {info.primary_ipv4_id, info.primary_ipv6_id}
    released = [c for c in recorder.changes if c.kind == "primary_ip" and c.action == "delete"]
    assert len(released) == 2 and all("fsn1" in c.detail for c in released)


def test_type_fallback_in_the_same_location_keeps_the_ips(
    hetzner_emulator: Any, tmp_path: Path, recorder: Recorder, hcloud_client: Any
) -> None:
    hetzner_emulator.set_faults(sold_out={"cx23@fsn1": "placement_error"})
    engine = _engine(hetzner_emulator, tmp_path, recorder, "cx33@fsn1")
    info = engine.apply_new(agent_spec())
    assert (info.server_type, info.location) == ("cx33", "fsn1")
    assert len(hcloud_client.primary_ips.get_all(label_selector="agent=alice")) == 2
    assert not [c for c in recorder.changes if c.action == "delete"]


def test_no_room_anywhere_is_one_line_naming_every_try(
    hetzner_emulator: Any, tmp_path: Path, recorder: Recorder
) -> None:
    hetzner_emulator.set_faults(sold_out={"*@fsn1": "resource_unavailable",
                                          "*@nbg1": "placement_error"})  # fmt: skip
    engine = _engine(hetzner_emulator, tmp_path, recorder, "cx23@nbg1")
    with pytest.raises(CloudError) as caught:
        engine.apply_fresh(agent_spec())
    message = str(caught.value)
    assert "cx23@fsn1 (resource_unavailable)" in message
    assert "cx23@nbg1 (placement_error)" in message and "\n" not in message


def test_without_fallbacks_the_error_is_hetzners_as_before(
    hetzner_emulator: Any, tmp_path: Path, recorder: Recorder
) -> None:
    hetzner_emulator.set_faults(sold_out={"cx23@fsn1": "resource_unavailable"})
    with pytest.raises(CloudError) as caught:
        _engine(hetzner_emulator, tmp_path, recorder, "").apply(agent_spec())
    assert caught.value.code == "resource_unavailable"


def test_fallbacks_parse_and_refuse_bad_entries() -> None:
    parsed = parse_fallbacks("cx33@fsn1, cx23@nbg1,")
    assert parsed == (Placement("cx33", "fsn1"), Placement("cx23", "nbg1"))
    assert candidates(Placement("cx33", "fsn1"), parsed) == list(parsed)
    for bad in ("cx33", "cx33@mars", "nope@fsn1"):
        with pytest.raises(ConfigError):
            parse_fallbacks(bad)


def _pair(client: Any) -> list[tuple[str, str, str, str]]:
    """The agent's primary IPs as its lookups find them: (id, name, address, location)."""
    ips = client.primary_ips.get_all(label_selector="managed-by=fatctl,agent=alice")
    return sorted((str(ip.id), ip.name, ip.ip, ip.location.name) for ip in ips)


def test_apply_of_an_existing_agent_never_moves_it_nor_releases_its_ips(
    hetzner_emulator: Any, tmp_path: Path, recorder: Recorder, hcloud_client: Any
) -> None:
    """Review finding 2: a converge (`fleet apply`) of a live agent whose server is gone, with
    its location sold out, fell back to nbg1 and deleted the fsn1 IPs DNS still pointed at
    (a released address goes to another customer). `apply` fails instead, keeping them."""
    engine = _engine(hetzner_emulator, tmp_path, recorder, "cx23@nbg1")
    engine.apply_fresh(agent_spec(), user_data="#cloud-config\n")
    before = _pair(hcloud_client)
    server = hcloud_client.servers.get_by_name("alice")
    server.change_protection(delete=False, rebuild=False).wait_until_finished()
    server.delete().wait_until_finished()
    hetzner_emulator.set_faults(sold_out={"*@fsn1": "resource_unavailable"})
    with pytest.raises(CloudError) as caught:
        engine.apply(agent_spec())
    assert caught.value.code == "resource_unavailable"
    assert _pair(hcloud_client) == before
    assert not [c for c in recorder.changes if c.kind == "primary_ip" and c.action == "delete"]


def test_no_room_anywhere_keeps_the_reserved_pair_and_a_rerun_uses_it(
    hetzner_emulator: Any, tmp_path: Path, recorder: Recorder, hcloud_client: Any
) -> None:
    """Review finding 3: the asked location's reserved IPs (already in DNS and the agent's
    record) were deleted before the fallback tries, and the pair those left in nbg1 made every
    rerun fail with `primary IP is in another location`. Now the reserved pair is only held
    aside while tries run elsewhere and comes back when none has room."""
    engine = _engine(hetzner_emulator, tmp_path, recorder, "cx23@nbg1")
    reserved = engine.reserve_addresses(agent_spec())
    before = _pair(hcloud_client)
    hetzner_emulator.set_faults(sold_out={"*@fsn1": "resource_unavailable",
                                          "*@nbg1": "resource_unavailable"})  # fmt: skip
    with pytest.raises(CloudError):
        engine.apply_fresh(agent_spec())
    assert _pair(hcloud_client) == before  # same ids, names, addresses, location
    assert len(hcloud_client.primary_ips.get_all()) == 2  # nothing left in nbg1
    hetzner_emulator.clear_faults()
    info = _engine(hetzner_emulator, tmp_path, recorder, "cx23@nbg1").apply_new(agent_spec())
    assert (info.location, info.ipv4, info.ipv6) == ("fsn1", reserved.ipv4, reserved.ipv6)


def test_a_fallback_elsewhere_releases_the_asked_pair_only_once_the_box_runs(
    hetzner_emulator: Any, tmp_path: Path, recorder: Recorder, hcloud_client: Any
) -> None:
    """fsn1 and nbg1 full, hel1 has room: the fsn1 pair survives the failed nbg1 try and is
    released after the hel1 create; the nbg1 pair is released before the hel1 try."""
    hetzner_emulator.set_faults(sold_out={"*@fsn1": "resource_unavailable",
                                          "*@nbg1": "placement_error"})  # fmt: skip
    engine = _engine(hetzner_emulator, tmp_path, recorder, "cx23@nbg1,cx23@hel1")
    engine.reserve_addresses(agent_spec())
    info = engine.apply_fresh(agent_spec())
    assert info.location == "hel1"
    assert [ip[3] for ip in _pair(hcloud_client)] == ["hel1", "hel1"]
    assert len(hcloud_client.primary_ips.get_all()) == 2
    released = [c.detail for c in recorder.changes
                if c.kind == "primary_ip" and c.action == "delete"]  # fmt: skip
    assert released == ["released: nbg1"] * 2 + ["released: fsn1, the box runs elsewhere"] * 2


def test_a_fallback_never_changes_the_architecture() -> None:
    """Review finding 10: an x86 agent's image (or golden snapshot) does not boot on an ARM
    (cax) type, nor an ARM agent's on x86: such alternatives are skipped."""
    fallbacks = parse_fallbacks("cax21@fsn1,cx33@nbg1,cax21@hel1")
    assert candidates(Placement("cx23", "fsn1"), fallbacks) == [
        Placement("cx23", "fsn1"), Placement("cx33", "nbg1")]  # fmt: skip
    arm = [Placement("cax11", "fsn1"), Placement("cax21", "fsn1"), Placement("cax21", "hel1")]
    assert candidates(arm[0], fallbacks) == arm
