"""Fixtures for rollout tests: real sshd hosts, each with the harness runtime, in a state DB.

`box_fleet(n)` for upgrades; `converge_fleet(n)` adds the operator key to the database (every
render needs one) and seeds each host's `box/fs` with the agent's rendered files, as
provisioning would have left them, then starts the gateways on that configuration.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fatctl.remote.commands.converge import ConvergeLayout
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
    files: ConvergeLayout | None = None


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


def add_operator_key(box: BoxFleet) -> None:
    from fatctl.domain import KeyRole
    from fatctl.remote.target import fingerprint
    from fatctl.state.db import session_scope
    from fatctl.state.models import SshKey

    key = box.hosts[0].identity.public_key.strip()
    with session_scope(box.fleet.engine) as session:
        session.add(
            SshKey(
                role=KeyRole.OPERATOR.value,
                label="ops",
                public_key=key,
                fingerprint=fingerprint(key),
            )
        )


@pytest.fixture
def converge_fleet(
    box_fleet: Callable[[int], BoxFleet], ssh_identity: SshIdentity
) -> Callable[[int], BoxFleet]:
    """`converge_fleet(n)`: n boxes holding their rendered files, gateways serving them."""
    from fatctl.services.converge.job import render_for
    from fatctl.services.rollout.engine import Run

    def make(n: int) -> BoxFleet:
        box = box_fleet(n)
        add_operator_key(box)
        for host in box.hosts:
            run = Run(box.fleet.engine, box.fleet.settings, box.layout, "test", print)
            harness.seed_files(host, render_for(run, host.name, "templates"))
            (host.home(ssh_identity.operator) / "box" / "events.log").unlink(missing_ok=True)
        started = fan_out([h.target() for h in box.hosts], restart(box.layout))
        assert all(r.ok for r in started), [r.as_dict() for r in started]
        box.files = harness.files_layout(ssh_identity.operator)
        box.env.update(harness.files_env(ssh_identity.operator))
        return box

    return make
