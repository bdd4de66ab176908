"""Fixtures for rollout tests: real sshd hosts, each with the harness runtime, in a state DB."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fatctl.remote.commands.upgrade import BoxLayout, restart
from fatctl.remote.fanout import fan_out
from tests.fixtures.sshd import Fleet, SshHost, SshIdentity
from tests.integration.rollout import harness


@dataclass
class BoxFleet:
    fleet: Fleet
    hosts: list[SshHost]
    layout: BoxLayout
    env: dict[str, str]


@pytest.fixture
def box_fleet(
    sshd_hosts: Callable[..., list[SshHost]],
    fleet_db: Callable[[list[SshHost]], Fleet],
    ssh_identity: SshIdentity,
) -> Iterator[Callable[[int], BoxFleet]]:
    """`box_fleet(n)`: n hosts serving the OLD version, listed as agents; gateways stopped after."""
    base = Path(tempfile.mkdtemp(prefix="rollout-", dir=ssh_identity.workdir))
    artifacts = harness.make_artifacts(base)
    made: list[SshHost] = []

    def make(n: int) -> BoxFleet:
        hosts = sshd_hosts(n)
        made.extend(hosts)
        for host in hosts:
            harness.install_box(host, artifacts)
        layout = harness.layout(ssh_identity.operator)
        started = fan_out([h.target() for h in hosts], restart(layout))
        assert all(r.ok for r in started), [r.as_dict() for r in started]
        fleet = fleet_db(hosts)
        env = {**fleet.env, **harness.layout_env(ssh_identity.operator)}
        return BoxFleet(fleet, hosts, layout, env)

    try:
        yield make
    finally:
        for host in made:
            harness.stop_gateway(host)
        shutil.rmtree(base, ignore_errors=True)
