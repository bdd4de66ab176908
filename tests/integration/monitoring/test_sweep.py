"""The fleet sweep `fatctl serve` runs (`fatctl.monitoring.sweep.sweep_fleet`) against real
loopback stand-ins: HTTPS `/readyz` servers on the agents' own addresses (127.0.10.N, the
stand-in of `standin_fleet`, answering as OpenClaw's gateway does behind Caddy) and real sshd
daemons on the same addresses, whose `fat-health` is a script printing a report in
fat-health's JSON shape (`templates/scripts/fat-health.sh.j2`: healthy, problems, backup).

What must hold: a box answering ready is stored `via=https` and is never opened over SSH (its
sshd logs no connection); a box failing /readyz (503, refused, or no box at all) is asked over
SSH and stored failing `via=ssh` with both reasons; the rows of one agent are pruned to the
newest N; the backup a box reports is recorded, so backup age counts the box's own timer; and
`GET /metrics` of the app `fatctl serve` runs shows the stored results, to a token with
`metrics:read` only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select

from fatctl.monitoring.store import ProbeRow, write_sweep
from fatctl.monitoring.sweep import sweep_fleet
from tests.integration.monitoring.conftest import BACKUP_AT, Swept

T0 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def test_failing_boxes_escalate_to_ssh_and_ready_ones_never_do(swept: Swept) -> None:
    before = swept.connections()
    summary = sweep_fleet(swept.fleet.engine, None, swept.settings, now=T0, timeout_s=5.0)  # type: ignore[arg-type]
    after = swept.connections()
    assert (summary.probed, summary.ok, summary.failed) == (5, 2, 3), summary
    assert summary.ssh_healthy == 1  # box3: fat-health healthy, /readyz 503
    rows = {name: found[-1] for name, found in swept.rows().items()}
    for ready in ("box1", "box2"):
        assert (rows[ready]["ok"], rows[ready]["via"], rows[ready]["status_code"]) == (
            True, "https", 200)  # fmt: skip
        assert rows[ready]["error"] is None and rows[ready]["latency_ms"] > 0
        assert after[ready] == before[ready], f"{ready} answered ready but was opened over SSH"
    for failing in ("box3", "box4", "box5"):
        assert (bool(rows[failing]["ok"]), rows[failing]["via"]) == (False, "ssh"), rows[failing]
    assert rows["box3"]["status_code"] == 503
    assert rows["box3"]["error"].startswith("gateway not ready (HTTP 503); fat-health: healthy")
    assert "refused" in rows["box4"]["error"]
    assert rows["box4"]["error"].endswith("fat-health: unhealthy: gateway not running")
    assert "fat-health: unreachable" in rows["box5"]["error"]
    assert after["box3"] > before["box3"] and after["box4"] > before["box4"]
    stamped = rows["box1"]["at"]
    stamped = stamped if isinstance(stamped, datetime) else datetime.fromisoformat(stamped)
    assert stamped.replace(tzinfo=UTC) == T0


def test_rows_are_pruned_to_the_newest_n_per_agent(swept: Swept) -> None:
    for sweep in range(4):
        sweep_fleet(swept.fleet.engine, None, swept.settings,  # type: ignore[arg-type]
                    now=T0 + timedelta(minutes=5 * sweep), keep=3)  # fmt: skip
    rows = swept.rows()
    assert sorted(rows) == ["box1", "box2", "box3", "box4", "box5"]
    newest = ["2026-12-07 05:05", "2026-12-07 05:10", "2026-12-07 05:15"]
    for name, found in rows.items():
        stamps = [str(r["at"])[:16] for r in found]
        # box3..box5 never answered ready: their incident (every failure) is kept whole.
        expected = newest if name in ("box1", "box2") else ["2026-12-07 05:00", *newest]
        assert stamps == expected, (name, stamps)


def _ready_agents(engine: Any, *names: str) -> list[int]:
    """Ready agents of one owner, straight into the state database; their row ids."""
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent, Owner

    with session_scope(engine) as session:
        owner = Owner(email="o@example.com", plan="managed")
        session.add(owner)
        session.flush()
        pks = []
        for name in names:
            agent = Agent(name=name, agent_id=f"id-{name}", owner_id=owner.id or 0, state="ready",
                          server_type="cx23", location="fsn1", image="debian-12",
                          runtime_version="2026.9.6")  # fmt: skip
            session.add(agent)
            session.flush()
            pks.append(agent.id or 0)
        return pks


def test_write_sweep_prunes_on_both_engines(migrated_engine: Any) -> None:
    """The prune is one window-function DELETE: it must run on SQLite and PostgreSQL."""
    pks = _ready_agents(migrated_engine, "a1", "a2")
    for i in range(5):
        at = T0 + timedelta(minutes=i)
        write_sweep(migrated_engine, [ProbeRow(pk, at, i % 2 == 0, "https", 200, 1.5, None)
                                      for pk in pks], keep=2)  # fmt: skip
    with migrated_engine.connect() as conn:
        kept = conn.execute(text("SELECT agent_pk, at FROM probe_results ORDER BY agent_pk, at"))
        minutes = [(pk, (at if isinstance(at, datetime) else datetime.fromisoformat(at)).minute)
                   for pk, at in kept]  # fmt: skip
    assert minutes == [(pks[0], 3), (pks[0], 4), (pks[1], 3), (pks[1], 4)]


def test_the_current_incident_outlives_the_prune(migrated_engine: Any) -> None:
    """An incident longer than `keep` sweeps keeps its start (the newest ok probe and every
    failure since), which repair reads the rungs already tried from; once the box is ok again
    the incident is history and the prune goes back to the newest `keep`."""
    (pk,) = _ready_agents(migrated_engine, "a1")
    health = [True, True, False, False, False, False, False]
    for i, ok in enumerate(health):
        write_sweep(migrated_engine, [ProbeRow(pk, T0 + timedelta(minutes=i), ok, "https", 200,
                                               1.5, None)], keep=2)  # fmt: skip

    def kept() -> list[tuple[int, bool]]:
        with migrated_engine.connect() as conn:
            rows = conn.execute(text("SELECT at, ok FROM probe_results ORDER BY at"))
            return [((at if isinstance(at, datetime) else datetime.fromisoformat(at)).minute,
                     bool(ok)) for at, ok in rows]  # fmt: skip

    assert kept() == [(1, True), (2, False), (3, False), (4, False), (5, False), (6, False)]
    write_sweep(migrated_engine, [ProbeRow(pk, T0 + timedelta(minutes=7), True, "https", 200,
                                           1.5, None)], keep=2)  # fmt: skip
    assert kept() == [(6, False), (7, True)]


def test_backups_the_boxes_report_count_for_backup_age(swept: Swept) -> None:
    """box3 fails /readyz and reports a backup: recorded. box1 answers ready, but backups are
    configured for it and fatctl knows none: it is asked once for its backup (and only that),
    and not again while the backup it reported is fresh."""
    from fatctl.monitoring.metrics import Sources, fleet_registry
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent

    with session_scope(swept.fleet.engine) as session:
        for agent in session.exec(select(Agent).where(col(Agent.name).in_(["box1", "box3"]))):
            agent.backup_recipient = "age1examplerecipient"
    before = swept.connections()
    summary = sweep_fleet(swept.fleet.engine, None, swept.settings, now=T0)  # type: ignore[arg-type]
    assert (summary.backup_looks, summary.backups_seen) == (1, 2), summary
    assert swept.connections()["box1"] > before["box1"]
    assert swept.rows()["box1"][-1]["via"] == "https"  # a backup look is not a failure
    registry = fleet_registry(Sources(state_url=swept.settings.database_url, budgets=None))
    ages = {s.labels["agent"]: s.value for m in registry.collect() for s in m.samples
            if m.name == "fatctl_backup_last_timestamp_seconds"}  # fmt: skip
    expected = datetime.fromisoformat(BACKUP_AT.replace("Z", "+00:00")).timestamp()
    assert ages == {"box1": expected, "box3": expected}
    again = swept.connections()
    later = sweep_fleet(swept.fleet.engine, None, swept.settings,  # type: ignore[arg-type]
                        now=T0 + timedelta(minutes=5))  # fmt: skip
    assert later.backup_looks == 0 and swept.connections()["box1"] == again["box1"]


def test_metrics_of_the_serve_app_show_the_stored_results(swept: Swept) -> None:
    """`GET /metrics` on `create_app` (what `fatctl serve` runs) answers from `probe_results`:
    nothing in this process probed; a token without `metrics:read` gets 403, none 401."""
    from fastapi.testclient import TestClient

    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.sensitive import Sensitive
    from fatctl.service.api.app import create_app
    from fatctl.service.context import Runtime
    from fatctl.service.tokens import create_token

    sweep_fleet(swept.fleet.engine, None, swept.settings, now=T0)  # type: ignore[arg-type]
    db = swept.fleet.engine
    scraper, _ = create_token(db, "prometheus", ["metrics:read"], None, "test@ci")
    reader, _ = create_token(db, "reader", ["agents:read"], None, "test@ci")
    ring = keyring_from(Sensitive(generate_master_key()))
    runtime = Runtime(db, ring, swept.settings, make_infra=lambda: None)  # type: ignore[arg-type,return-value]
    with TestClient(create_app(runtime, launch=False)) as client:
        assert client.get("/metrics").status_code == 401
        denied = client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        assert denied.status_code == 403
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {scraper}"})
    assert answer.status_code == 200, answer.text
    body = answer.text
    for agent, up in (("box1", 1), ("box2", 1), ("box3", 0), ("box4", 0), ("box5", 0)):
        assert f'fatctl_probe_up{{agent="{agent}"}} {up}.0' in body, body
    assert 'fatctl_probe_results{result="failed"} 3.0' in body
    assert 'fatctl_metrics_source_up{source="probes"} 1.0' in body
    assert scraper not in body and reader not in body
    with db.connect() as conn:
        audited = conn.execute(text("SELECT result FROM audit_events WHERE target = '/metrics'"))
        assert sorted(r[0] for r in audited) == ["refused", "refused"]  # good scrapes: no row


def test_times_are_stored_and_read_back_in_utc(db_url: str) -> None:
    """A sweep stamped in another zone is stored as the same instant: SQLite keeps no offset
    (the local wall time would be read back as UTC), PostgreSQL answers in its session's zone."""
    from datetime import timezone

    from fatctl.monitoring.store import recent_rows
    from fatctl.state import migrate
    from fatctl.state.db import make_engine

    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    (pk,) = _ready_agents(engine, "a1")
    berlin = T0.astimezone(timezone(timedelta(hours=2)))
    write_sweep(engine, [ProbeRow(pk, berlin, True, "https", 200, 1.0, None)])
    engine.dispose()
    [row] = recent_rows(db_url)
    assert row["at"] == T0 and row["at"].utcoffset() == timedelta(0)


def test_a_replayed_sweep_writes_nothing_twice_and_keeps_a_backups_checksum(
    migrated_engine: Any,
) -> None:
    """Review 28 L5 and L6: the sweep is one DBOS step, so a crash after its commit replays it
    with the same instant; the replay inserted a second row set (one failure counted twice by
    `down_after`). And a backup `take_backup` had recorded (sha256, runtime version) lost both
    to "" when a sweep saw the same object in a box's report."""
    from fatctl.monitoring.store import SeenBackup
    from fatctl.state import repo
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent, Backup

    (pk,) = _ready_agents(migrated_engine, "a1")
    with session_scope(migrated_engine) as session:
        agent = session.get(Agent, pk)
        assert agent is not None
        key = "20261207T040000Z-scheduled.tar.gz.age"
        repo.record_backup(session, agent, Backup(
            agent_pk=pk, object_key=key, kind="scheduled", created_at=T0 - timedelta(hours=1),
            size_bytes=2048, sha256="ab" * 32, runtime_version="2026.9.6"))  # fmt: skip
    rows = [ProbeRow(pk, T0, False, "ssh", 503, 2.0, "gateway not ready")]
    seen = [SeenBackup(pk, key, T0 - timedelta(minutes=59), 2048)]
    for _ in range(2):  # the sweep, then its replay
        write_sweep(migrated_engine, rows, seen)
    write_sweep(migrated_engine, [ProbeRow(pk, T0 + timedelta(minutes=5), True, "https", 200,
                                           1.0, None)])  # fmt: skip
    with migrated_engine.connect() as conn:
        stored = conn.execute(text("SELECT ok, via FROM probe_results ORDER BY at")).all()
    assert [(bool(ok), via) for ok, via in stored] == [(False, "ssh"), (True, "https")]
    with session_scope(migrated_engine) as session:
        (backup,) = session.exec(select(Backup)).all()
        assert (backup.sha256, backup.runtime_version) == ("ab" * 32, "2026.9.6")
