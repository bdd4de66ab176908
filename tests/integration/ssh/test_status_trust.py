"""`fatctl status` against real sshd when a box presents another host key than the pinned one
(issue 16): that is an attack or a rebuilt box, so the row says so, the run ends with one
line naming the agent, and the exit code is 1 (an SSH failure, like `fatctl ssh`'s refusal)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from fatctl.services.fleet.status import status, trust_warning
from fatctl.state.db import session_scope
from fatctl.state.models import Agent
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.fixtures.sshd import pin_wrong_key


def with_boxes(fleet: Any) -> Any:
    """Give every agent a server id: status asks a box for its health only when it has one."""
    with session_scope(fleet.engine) as session:
        for agent in session.exec(select(Agent)).all():
            agent.server_id = 1000 + (agent.id or 0)
    return fleet


def test_status_rows_name_the_box_with_another_host_key(sshd_hosts, fleet_db):
    hosts = sshd_hosts(2)
    fleet = with_boxes(fleet_db(hosts))
    assert trust_warning(status(fleet.engine, fleet.settings, None)) is None
    pin_wrong_key(fleet, "box1", hosts[1].host_key)
    rows = {r["agent"]: r for r in status(fleet.engine, fleet.settings, None)}
    assert (rows["box1"]["host_key"], rows["box2"]["host_key"]) == ("mismatch", "ok")
    assert str(rows["box1"]["health"]).startswith("refused: host key mismatch for box1")
    warning = trust_warning(list(rows.values()))
    assert warning is not None and warning.startswith("host key mismatch for box1: ")
    assert "box2" not in warning and "\n" not in warning


def test_status_exits_1_with_one_line_naming_the_agent(sshd_hosts, fleet_db):
    hosts = sshd_hosts(2)
    fleet = with_boxes(fleet_db(hosts))
    pin_wrong_key(fleet, "box2", hosts[0].host_key)
    for extra in ((), ("--json",)):
        res = run_fatctl("status", *extra, env=fatctl_env(fleet.env), timeout=120)
        assert res.returncode == 1, res.stderr
        assert res.stderr.startswith("fatctl: error: host key mismatch for box2: ")
        assert res.stderr.count("\n") == 1
        assert "box1" in res.stdout and "box2" in res.stdout  # every agent is still shown
