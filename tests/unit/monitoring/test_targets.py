"""The sweep's targets from the state database: running agents only, by name, or by their
recorded address with the name kept for SNI and Host."""

from __future__ import annotations

import pytest

from fatctl.monitoring.probe import ProbeTarget
from fatctl.monitoring.targets import fleet_targets, running_targets
from fatctl.state import migrate
from fatctl.state.rawdb import connect
from tests.fixtures.fleet_rows import seed_agents


def test_running_agents_are_probed_by_name(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    seed_agents(sqlite_url, 4)
    with connect(sqlite_url) as conn:
        conn.execute("UPDATE agents SET state = 'destroyed' WHERE name = 'agent00001'")
        conn.execute("UPDATE agents SET state = 'provisioning' WHERE name = 'agent00002'")
        conn.execute("UPDATE agents SET state = 'degraded' WHERE name = 'agent00003'")
        conn.commit()
    assert running_targets(sqlite_url, "agents.example") == [
        ProbeTarget("agent00000", "agent00000.agents.example"),
        ProbeTarget("agent00003", "agent00003.agents.example"),
    ]
    by_address = running_targets(sqlite_url, "agents.example", by_address=True, port=8443)
    assert [(t.address, t.url) for t in by_address] == [
        ("10.0.0.0", "https://10.0.0.0:8443/readyz"),
        ("10.0.0.3", "https://10.0.0.3:8443/readyz"),
    ]


def test_an_ipv6_only_box_is_reached_by_its_ipv6_address() -> None:
    [target] = fleet_targets([{"name": "v6", "ipv4": "", "ipv6": "fd77::3"}], "a.example",
                             by_address=True)  # fmt: skip
    assert target.url == "https://[fd77::3]/readyz"
    assert target.host_header == "v6.a.example"


def test_no_domain_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="set FATCTL_DOMAIN"):
        fleet_targets([{"name": "a"}], "")
