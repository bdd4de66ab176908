"""An agent whose destroy failed on a cloud error is left `destroying` (issue 16). The ways out:
`fatctl destroy` again, which resumes once the cloud answers; and, when it never will (the
project is gone, the server is held by someone else), `fatctl agents delete --force`, which
forgets the record after confirmation (`--yes` without a terminal), audited, leaving whatever
remains at the clouds to `fatctl reconcile` as orphans.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fatctl.domain import AgentState
from fatctl.errors import CloudError
from fatctl.services.provision.destroy import destroy
from fatctl.services.provision.flow import provision
from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.provision.test_provision_flow import agent_row, opts, request


def stuck(plane: Any, name: str) -> None:
    """`name` provisioned, then its destroy failed on Hetzner: left `destroying`."""
    provision(plane.db, plane.ring, plane.settings, plane.infra(), request(name), "t", opts())
    plane.hetzner.set_faults(error_rate=1.0, error_statuses=[500])
    try:
        with pytest.raises(CloudError):
            destroy(plane.db, plane.ring, plane.settings, plane.infra(), name, "t")
    finally:
        plane.hetzner.clear_faults()
    assert agent_row(plane, name).state == AgentState.DESTROYING.value


def test_destroy_resumes_from_destroying(plane: Any) -> None:
    stuck(plane, "stuck")
    done = destroy(plane.db, plane.ring, plane.settings, plane.infra(), "stuck", "t")
    assert done.state == AgentState.DESTROYED.value
    assert "stuck" not in plane.servers() and plane.dns() == []


def test_agents_delete_force_forgets_a_stuck_agent(plane: Any, tmp_path: Path) -> None:
    stuck(plane, "stuck")
    provision(plane.db, plane.ring, plane.settings, plane.infra(), request("alive"), "t", opts())
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path / "cli"), FATCTL_ACTOR="ops@test",
                     FATCTL_DATABASE_URL=plane.settings.database_url)  # fmt: skip

    def fatctl(*args: str, code: int) -> str:
        proc = run_fatctl("agents", "delete", *args, env=env, timeout=60, check=code)
        assert code == 0 or proc.stderr.count("\n") == 1, proc.stderr
        return proc.stdout + proc.stderr

    assert "--force" in fatctl("stuck", "--yes", code=1)  # the refusal names the way out
    assert "refusing without --yes" in fatctl("stuck", "--force", code=2)  # CI: never asks
    assert "may own cloud resources" in fatctl("alive", "--force", "--yes", code=1)
    assert json.loads(fatctl("stuck", "--force", "--yes", "--json", code=0))["deleted"] is True
    with session_scope(plane.db) as session:
        assert not repo.agent_exists(session, "stuck") and repo.agent_exists(session, "alive")
        (event,) = [e for e in repo.audit_trail(session, target="stuck")
                    if e.action == "agent.delete"]  # fmt: skip
        assert event.actor == "ops@test"
        assert json.loads(event.detail) == {"forced": True, "state": "destroying"}
    assert "stuck" in plane.servers()  # left at Hetzner: reconcile reports it as an orphan
