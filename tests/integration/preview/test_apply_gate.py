"""The health gate `fatctl apply` runs after a resize, on real sshd hosts carrying the rollout
harness runtime (tests/integration/rollout/harness.py): a healthy box passes, a stopped gateway
fails the gate with the box's own reason, a box that never answers on SSH is `unreachable`.
Needs root (sshd per loopback address); skipped with a reason otherwise."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fatctl.errors import RemoteError
from fatctl.pacing.poll import Poll
from fatctl.services.fleet.apply_gate import ssh_health_gate
from tests.integration.rollout import harness
from tests.integration.rollout.conftest import BoxFleet, box_fleet  # noqa: F401 (fixture)


def set_agent(fleet: BoxFleet, name: str, **columns: str) -> None:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(fleet.fleet.engine) as session:
        agent = repo.get_agent(session, name)
        for key, value in columns.items():
            setattr(agent, key, value)
        session.add(agent)


def test_gate_after_power_cycle(box_fleet: Callable[[int], BoxFleet]) -> None:  # noqa: F811
    fleet = box_fleet(3)
    healthy, stopped, gone = fleet.hosts
    for host in fleet.hosts:  # the harness boxes serve OLD; the database must say so
        set_agent(fleet, host.name, runtime_version=harness.OLD)
    db, settings = fleet.fleet.engine, fleet.fleet.settings
    gate = ssh_health_gate(db, settings, fleet.layout, timeout_s=8.0, poll=Poll(0.2))

    assert gate(healthy.name) is None

    harness.stop_gateway(stopped)
    why = gate(stopped.name)
    assert why is not None and why.startswith("health gate failed within")

    set_agent(fleet, gone.name, ipv4="127.0.10.254")  # nothing listens there
    with pytest.raises(RemoteError, match=f"{gone.name} did not come back on SSH"):
        gate(gone.name)

    set_agent(fleet, healthy.name, runtime_version=harness.NEW)  # the box must match the record
    why = gate(healthy.name)
    assert why is not None and f"expected {harness.NEW}" in why
