"""The resource guards' figures from the box to /metrics (issue 20), on a migrated state database
(SQLite and PostgreSQL): what fat-health reported to a sweep is stored on that probe's row, and
`fatctl serve`'s registry shows disk, memory, channels and the gateway's restarts per agent,
only for the boxes a sweep asked, only for running agents, and from the newest report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fatctl.monitoring.metrics import MIB, BoxFigures
from fatctl.monitoring.probe import ProbeResult
from fatctl.monitoring.served import served_registry
from fatctl.monitoring.store import stored_box_figures, write_sweep
from fatctl.monitoring.sweep import Box, probe_row
from fatctl.services.fleet.status import BoxHealth
from fatctl.state import migrate
from fatctl.state.db import make_engine
from tests.fixtures.fleet_rows import seed_agents
from tests.unit.monitoring.test_metrics import execute

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def report(restarts: int, disk_mb: int = 4000, **more: object) -> dict[str, object]:
    """`fat-health --json` as the box prints it (templates/scripts/fat-health.sh.j2)."""
    return {"healthy": False, "gateway": "activating", "runtime_version": "2026.9.6",
            "data_mounted": True, "disk_free_mb": disk_mb, "mem_available_mb": 900, "ready": False,
            "channels": {"telegram": "unknown"}, "backup": None, "gateway_restarts": restarts,
            "gateway_memory_bytes": 700 * MIB, "gateway_memory_peak_bytes": 1500 * MIB,
            "problems": ["gateway unit is activating"], **more}  # fmt: skip


def test_from_report_keeps_only_what_the_box_said() -> None:
    seen = BoxFigures.from_report(report(4, gateway_memory_peak_bytes=None))
    assert seen is not None
    assert (seen.gateway_restarts, seen.disk_free_mb, seen.gateway_memory_peak_bytes) == (
        4, 4000, None)  # fmt: skip
    assert BoxFigures.from_report(None) is None  # not reached: no figures, not zeros
    older = BoxFigures.from_report({"healthy": True, "disk_free_mb": "x"})  # an older fat-health
    assert older is not None and (older.gateway_restarts, older.disk_free_mb) == (None, None)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(served_registry(url)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip


def test_the_sweep_stores_the_figures_and_metrics_show_them_for_asked_boxes(db_url: str) -> None:
    migrate.upgrade(db_url)
    seed_agents(db_url, 3)
    execute(db_url, [("UPDATE agents SET state = 'destroyed' WHERE name = 'agent00002'", ())])
    db = make_engine(db_url)
    boxes = [Box(i + 1, f"agent0000{i}", "", "", None, False) for i in range(3)]
    failed = ProbeResult("x", False, 503, 0.2, "HTTP 503")
    ok = ProbeResult("x", True, 200, 0.05, "")
    asked = BoxHealth("unhealthy: gateway unit is activating", "-", "ok", report(5, disk_mb=300))
    # Sweep 1: agent00000 fails and is asked; agent00001 answers (never asked); the destroyed
    # agent's row has figures too, but it is not running.
    write_sweep(db, [probe_row(boxes[0], failed, asked, T0), probe_row(boxes[1], ok, None, T0),
                     probe_row(boxes[2], failed, asked, T0)])  # fmt: skip
    # Sweep 2: agent00000 answers again; its newest figures are still sweep 1's.
    write_sweep(db, [probe_row(boxes[0], ok, None, T0 + timedelta(minutes=5))])
    figures = stored_box_figures(db_url, states=["ready"])
    assert set(figures) == {"agent00000"}
    assert figures["agent00000"].gateway_restarts == 5
    assert figures["agent00000"].gateway_memory_peak_bytes == 1500 * MIB
    samples = scrape(db_url)
    agent = (("agent", "agent00000"),)
    assert samples[("fatctl_gateway_restarts", agent)] == 5.0
    assert samples[("fatctl_box_disk_free_bytes", agent)] == 300.0 * MIB
    assert samples[("fatctl_box_memory_available_bytes", agent)] == 900.0 * MIB
    per_agent = {labels for (name, labels) in samples
                 if name in ("fatctl_gateway_restarts", "fatctl_box_disk_free_bytes")}  # fmt: skip
    assert per_agent == {agent}  # the box never asked and the destroyed one have no series
    # "unknown" says nothing about a channel: no series for it.
    assert not [k for k in samples if k[0] == "fatctl_channel_ready"]
    db.dispose()
