"""Where a capacity fallback put the box is recorded (issue 17): the agent's row, the audit
trail (`provision.placed`) and the `infra` step's output all say it.

The emulator answers a sold-out create as Hetzner documents it (api-evangelist/hetzner,
openapi/_original/hetzner-openapi.yml): "| `412` | `resource_unavailable` | The requested
resource is currently unavailable (e.g. not available for order). |".
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from fatctl.config import HcloudProject
from fatctl.errors import CloudError, ConfigError
from fatctl.infra import make_engine
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
from fatctl.services.common.specs import spec_for_agent
from fatctl.services.provision.flow import provision
from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.integration.provision.test_provision_flow import opts, request


def test_the_record_the_audit_trail_and_the_output_say_where_the_box_went(plane: Any) -> None:
    settings = replace(plane.settings, fallbacks="cx33@fsn1")
    plane.hetzner.set_faults(sold_out={"cx23@fsn1": "resource_unavailable"})
    engine = HcloudEngine(settings, timing=Timing.instant(), sleep=lambda s: None)
    done = provision(plane.db, plane.ring, settings, engine, request("moved"), "t", opts())
    with session_scope(plane.db) as session:
        agent = repo.get_agent(session, "moved")
        assert (agent.server_type, agent.location) == ("cx33", "fsn1")
        events = [e for e in repo.audit_trail(session, target="moved")
                  if e.action == "provision.placed"]  # fmt: skip
    assert [json.loads(e.detail) for e in events] == [{"placed": "cx33@fsn1 (asked cx23@fsn1)"}]
    infra = next(s for s in done.steps if s.get("step") == "infra")
    assert "cx33@fsn1 (asked cx23@fsn1)" in json.dumps(infra)
    assert plane.servers()["moved"]["server_type"] == "cx33"


def _engine(settings: Any) -> HcloudEngine:
    return HcloudEngine(settings, timing=Timing.instant(), sleep=lambda s: None)


def test_converging_a_live_agent_never_releases_the_ips_dns_points_at(plane: Any) -> None:
    """Review finding 2 (its reproduction, /tmp/rev17/apply_release.py): `fleet apply` of a
    live agent whose server is gone, with fsn1 sold out and a fallback in nbg1, moved the box
    and deleted the fsn1 IPs while the agent's record and DNS still pointed at them. The
    converge refuses instead, and the addresses stay the agent's."""
    settings = replace(plane.settings, fallbacks="cx23@nbg1")
    done = provision(plane.db, plane.ring, settings, _engine(settings), request("live"), "t",
                     opts())  # fmt: skip
    ips_before, dns_before = plane.primary_ips(), plane.dns()
    from hcloud import Client

    client = Client(token=plane.hetzner.token, api_endpoint=plane.hetzner.url)
    server = client.servers.get_by_name("live")
    server.change_protection(delete=False, rebuild=False).wait_until_finished()
    server.delete().wait_until_finished()
    plane.hetzner.set_faults(sold_out={"*@fsn1": "resource_unavailable"})
    spec = spec_for_agent("live", engine=plane.db, settings=settings)
    with pytest.raises(CloudError):
        _engine(settings).apply(spec)
    assert [(i["id"], i["ip"], i["location"]) for i in plane.primary_ips()] == [
        (i["id"], i["ip"], i["location"]) for i in ips_before]  # fmt: skip
    assert plane.dns() == dns_before
    assert {i["ip"] for i in plane.primary_ips() if i["type"] == "ipv4"} == {done.ipv4}
    assert plane.servers() == {}


def test_bad_fallbacks_are_refused_before_the_agent_is_recorded(plane: Any) -> None:
    """Review finding 6 (/tmp/rev17/bad_fallbacks.py): with several projects the engines, and
    so the fallbacks' parse, come only after the agent's row is written, which a bad entry
    then left `requested`. The provision's preflight parses them: exit 2, nothing written."""
    settings = replace(plane.settings, fallbacks="cx33")
    with pytest.raises(ConfigError) as caught:
        provision(plane.db, plane.ring, settings, _engine(plane.settings), request("badfb"),
                  "t", opts())  # fmt: skip
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)
    with session_scope(plane.db) as session:
        assert not repo.agent_exists(session, "badfb")
    assert plane.servers() == {} and plane.primary_ips() == []


def test_fallbacks_with_the_pulumi_engine_are_refused_not_ignored(plane: Any) -> None:
    """Review finding 6: the Pulumi program never parses `defaults.fallbacks`, so they were
    silently ignored; over several projects even a bad entry passed. Refused up front."""
    top = HcloudProject("", plane.settings.hcloud_token, plane.hetzner.url)
    p2 = HcloudProject("p2", plane.settings.hcloud_token, plane.hetzner.url)
    for settings in (
        replace(plane.settings, fallbacks="cx33@nbg1"),
        replace(plane.settings, fallbacks="cx33@nbg1", hcloud_projects=(top, p2)),
    ):
        with pytest.raises(ConfigError) as caught:
            make_engine(settings, "pulumi")
        assert "hcloud engine" in str(caught.value) and caught.value.exit_code == 2
    bad = replace(plane.settings, fallbacks="cx33", hcloud_projects=(top, p2))
    with pytest.raises(ConfigError):
        make_engine(bad, "hcloud")
    assert make_engine(replace(plane.settings, fallbacks="cx33@nbg1"), "hcloud").name == "hcloud"
