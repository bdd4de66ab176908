"""The fleet collector against a real migrated state database (SQLite and PostgreSQL): what a
scrape says is what the rows say at that moment, every source is optional, a failing source
costs only its own series, and two registries never share a value."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fatctl.domain import HealthReport
from fatctl.monitoring.history import ProbeHistory
from fatctl.monitoring.metrics import Sources, WorkflowCounts, fleet_registry, quantile, timestamp
from fatctl.monitoring.probe import ProbeResult
from fatctl.state import migrate
from fatctl.state.rawdb import connect
from tests.fixtures.fleet_rows import seed_agents

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
EXPIRY = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
BACKUP = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def scrape(sources: Sources) -> Samples:
    text = generate_latest(fleet_registry(sources)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def pick(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def execute(url: str, statements: list[tuple[str, tuple[object, ...]]]) -> None:
    with connect(url) as conn:
        style = "%s" if type(conn).__module__.startswith("psycopg") else "?"
        cur = conn.cursor()
        for sql, params in statements:
            cur.execute(sql.replace("?", style), params)
        conn.commit()


@pytest.fixture
def fleet(db_url: str) -> Iterator[str]:
    """Four agents: 0 and 1 ready, 2 degraded, 3 destroyed; R2 credentials for 0, 2 and 3;
    backups configured for 0 (one taken) and 1 (none yet)."""
    migrate.upgrade(db_url)
    seed_agents(db_url, 4)
    secret = (
        "INSERT INTO secrets (agent_pk, name, key_id, wrapped_key, ciphertext, expires_at,"
        " created_at, updated_at) SELECT id, 'r2_credentials', 'k1', ?, ?, ?, ?, ? FROM agents"
        " WHERE name = ?"
    )
    now = datetime(2026, 12, 7, tzinfo=UTC)
    execute(db_url, [
        ("UPDATE agents SET state = 'degraded' WHERE name = 'agent00002'", ()),
        ("UPDATE agents SET state = 'destroyed' WHERE name = 'agent00003'", ()),
        ("UPDATE agents SET backup_recipient = 'age1x' WHERE name IN ('agent00000', "
         "'agent00001')", ()),
        *[(secret, (b"w", b"c", EXPIRY, now, now, f"agent0000{i}")) for i in (0, 2, 3)],
        ("INSERT INTO backups (agent_pk, object_key, kind, created_at, size_bytes, sha256,"
         " runtime_version) SELECT id, 'agents/x/backups/a', 'scheduled', ?, 1, '', '' FROM"
         " agents WHERE name = 'agent00000'", (BACKUP,)),
    ])  # fmt: skip
    yield db_url


def test_a_scrape_reads_the_state_database(fleet: str) -> None:
    samples = scrape(Sources(state_url=fleet, budgets=None))
    assert pick(samples, "fatctl_agents") == {
        (("plan", "managed"), ("state", "ready")): 2.0,
        (("plan", "managed"), ("state", "degraded")): 1.0,
        (("plan", "managed"), ("state", "destroyed")): 1.0,
    }
    # Per-agent series only for boxes meant to run: the destroyed agent's credentials are none.
    assert pick(samples, "fatctl_r2_credentials_expiry_timestamp_seconds") == {
        (("agent", "agent00000"),): EXPIRY.timestamp(),
        (("agent", "agent00002"),): EXPIRY.timestamp(),
    }
    assert pick(samples, "fatctl_backup_last_timestamp_seconds") == {
        (("agent", "agent00000"),): BACKUP.timestamp(),
        (("agent", "agent00001"),): 0.0,  # configured, never taken: the alert's "stale"
    }
    assert set(pick(samples, "fatctl_metrics_source_up").values()) == {1.0}


def test_each_scrape_reads_anew(fleet: str) -> None:
    registry = fleet_registry(Sources(state_url=fleet, budgets=None))

    def ready() -> float:
        text = generate_latest(registry).decode()
        return next(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "fatctl_agents" and s.labels["state"] == "ready"
        )

    assert ready() == 2.0
    execute(fleet, [("UPDATE agents SET state = 'ready' WHERE name = 'agent00002'", ())])
    assert ready() == 3.0


def _history() -> ProbeHistory:
    history = ProbeHistory(keep=6, flap_after=3)
    for i, ok in enumerate([True, False, True, False]):
        history.record([
            ProbeResult("up", True, 200, 0.1 * (i + 1)),
            ProbeResult("down", False, None, 2.0, "no answer"),
            ProbeResult("flappy", ok, 200 if ok else 503, 0.05),
        ], sweep_s=1.5)  # fmt: skip
    return history


def test_probe_budget_health_and_workflow_series() -> None:
    health = {
        "a": HealthReport(True, "active", "2026.9.6", True, disk_free_mb=300,
                          mem_available_mb=900,
                          channels={"telegram": "ready", "slack": "failing", "x": "unknown"}),
    }  # fmt: skip
    samples = scrape(Sources(
        probes=_history(),
        budgets=lambda: [{"api": "hetzner", "limit": 3600, "remaining": 12},
                         {"api": "cloudflare", "limit": None, "remaining": None}],
        box_health=lambda: health,
        workflows=lambda: WorkflowCounts({"agents": 3, "rollouts": 0}, failed_total=2),
    ))  # fmt: skip
    assert pick(samples, "fatctl_probe_up") == {
        (("agent", "down"),): 0.0, (("agent", "flappy"),): 0.0, (("agent", "up"),): 1.0
    }  # fmt: skip
    assert pick(samples, "fatctl_probe_flapping") == {(("agent", "flappy"),): 1.0}
    assert pick(samples, "fatctl_probe_results") == {
        (("result", "ok"),): 1.0, (("result", "failed"),): 2.0
    }  # fmt: skip
    assert pick(samples, "fatctl_probe_latency_seconds")[(("quantile", "0.5"),)] == 0.4
    assert samples[("fatctl_probe_sweep_seconds", ())] == 1.5
    assert pick(samples, "fatctl_api_budget_remaining") == {(("api", "hetzner"),): 12.0}
    assert pick(samples, "fatctl_api_budget_limit") == {(("api", "hetzner"),): 3600.0}
    assert samples[("fatctl_box_disk_free_bytes", (("agent", "a"),))] == 300 * 1024 * 1024
    assert samples[("fatctl_box_memory_available_bytes", (("agent", "a"),))] == 900 * 1048576
    assert pick(samples, "fatctl_channel_ready") == {
        (("agent", "a"), ("channel", "slack")): 0.0,
        (("agent", "a"), ("channel", "telegram")): 1.0,
    }
    assert pick(samples, "fatctl_workflow_queue_depth") == {
        (("queue", "agents"),): 3.0, (("queue", "rollouts"),): 0.0
    }  # fmt: skip
    assert samples[("fatctl_workflows_failed_total", ())] == 2.0


def test_a_failing_source_costs_only_its_own_series() -> None:
    def broken() -> list[dict[str, object]]:
        raise RuntimeError("budget store unreachable")

    samples = scrape(Sources(probes=_history(), budgets=broken, workflows=lambda: None))
    assert pick(samples, "fatctl_metrics_source_up") == {
        (("source", "budgets"),): 0.0, (("source", "probes"),): 1.0,
        (("source", "workflows"),): 1.0,
    }  # fmt: skip
    assert pick(samples, "fatctl_api_budget_remaining") == {}
    assert len(pick(samples, "fatctl_probe_up")) == 3


def test_a_database_that_cannot_be_read_marks_its_sources_down(tmp_path: Path) -> None:
    samples = scrape(Sources(state_url=f"sqlite:///{tmp_path / 'missing.sqlite'}", budgets=None))
    assert pick(samples, "fatctl_metrics_source_up") == {
        (("source", s),): 0.0 for s in ("agents", "credentials", "backups", "repair")
    }


def test_registries_do_not_share_values() -> None:
    one, two = ProbeHistory(), ProbeHistory()
    one.record([ProbeResult("a", True, 200, 0.1)])
    two.record([ProbeResult("b", False, None, 0.1, "down")])
    assert pick(scrape(Sources(probes=one, budgets=None)), "fatctl_probe_up") == {
        (("agent", "a"),): 1.0
    }
    assert pick(scrape(Sources(probes=two, budgets=None)), "fatctl_probe_up") == {
        (("agent", "b"),): 0.0
    }


def test_nothing_at_all_is_a_valid_scrape() -> None:
    assert scrape(Sources(budgets=None)) == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), ("2026-12-08 01:00:00.000000", EXPIRY.timestamp()),
     ("2026-12-08 01:00:00+00:00", EXPIRY.timestamp()), (EXPIRY, EXPIRY.timestamp())],
)  # fmt: skip
def test_timestamps_from_either_database(raw: object, expected: float | None) -> None:
    assert timestamp(raw) == expected


def test_quantiles_are_nearest_rank() -> None:
    values = [0.1, 0.2, 0.3, 0.4, 10.0]
    assert [quantile(values, q) for q in (0.5, 0.9, 0.99, 1.0)] == [0.3, 10.0, 10.0, 10.0]
