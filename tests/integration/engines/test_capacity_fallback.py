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
    info = engine.apply(agent_spec())
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
