"""`fatctl status` on the prober: every box probed over HTTPS at once, SSH fat-health only for
the boxes failing `/readyz` (every box with `--ssh`), and the stored sweep history beside it.
The swept fleet (conftest): box1/box2 ready, box3 503 with a healthy fat-health, box4 no HTTPS
and an unhealthy fat-health, box5 nothing at its address.

The `--json` rows keep every key they had before the prober (scripts read them) and only add
`readyz` and `recent`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fatctl.monitoring.sweep import sweep_fleet
from fatctl.services.fleet.status import status
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.monitoring.conftest import Swept

T0 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
KEYS_BEFORE_THE_PROBER = {
    "agent", "state", "last_step", "server_id", "ipv4", "ipv6", "engine", "project", "error",
    "cloud", "health", "channels", "host_key",
}  # fmt: skip


def test_status_asks_only_failing_boxes_over_ssh(swept: Swept) -> None:
    sweep_fleet(swept.fleet.engine, None, swept.settings, now=T0)  # type: ignore[arg-type]
    before = swept.connections()
    rows = {r["agent"]: r for r in status(swept.fleet.engine, swept.settings, None)}
    after = swept.connections()
    for ready in ("box1", "box2"):
        assert after[ready] == before[ready], f"{ready} answered ready but was opened over SSH"
        assert str(rows[ready]["health"]).startswith("healthy: /readyz answered ready")
        assert str(rows[ready]["readyz"]).startswith("ready (HTTP 200, ")
        assert (rows[ready]["channels"], rows[ready]["host_key"]) == ("-", "-")
        assert rows[ready]["recent"] == "1/1 ok, last ok at 2026-12-07 05:00:00Z"
    assert rows["box3"]["health"] == "healthy 2026.9.6"  # fat-health's own verdict
    assert str(rows["box3"]["readyz"]).startswith("failed: gateway not ready (HTTP 503)")
    assert rows["box3"]["host_key"] == "ok"
    assert rows["box3"]["recent"] == "0/1 ok, last failed via ssh at 2026-12-07 05:00:00Z"
    assert rows["box4"]["health"] == "unhealthy: gateway not running"
    assert str(rows["box5"]["health"]).startswith("unreachable: ")
    assert after["box3"] > before["box3"] and after["box4"] > before["box4"]

    every = {r["agent"]: r for r in status(swept.fleet.engine, swept.settings, None, ssh_all=True)}
    assert swept.connections()["box1"] > after["box1"]
    assert every["box1"]["health"] == "healthy 2026.9.6" and every["box1"]["host_key"] == "ok"


def test_status_json_keeps_its_keys_and_adds_the_probe(swept: Swept) -> None:
    env = {
        **swept.fleet.env,
        "FATCTL_DOMAIN": swept.settings.domain,
        "FATCTL_PROBE_PORT": swept.settings.probe_port,
        "FATCTL_PROBE_CA_FILE": swept.settings.probe_ca_file,
        "FATCTL_PROBE_BY_ADDRESS": "1",
        "FATCTL_BOX_HEALTH": swept.settings.box_health,
    }
    res = run_fatctl("status", "--json", env=fatctl_env(env), timeout=120)
    assert res.returncode == 0, res.stderr
    rows = {r["agent"]: r for r in json.loads(res.stdout)}
    assert sorted(rows) == ["box1", "box2", "box3", "box4", "box5"]
    for row in rows.values():
        assert set(row) == KEYS_BEFORE_THE_PROBER | {"readyz", "recent"}
        assert row["recent"] == "-"  # no sweep has run
    assert rows["box1"]["readyz"].startswith("ready (HTTP 200")
    assert rows["box4"]["health"] == "unhealthy: gateway not running"
