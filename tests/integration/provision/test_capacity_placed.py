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

from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
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
