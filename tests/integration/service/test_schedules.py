"""`fatctl serve`'s schedules (fatctl.service.schedules) on DBOS 3.4.0, SQLite and PostgreSQL.

DBOS's scheduler reads the wall clock (`_ScheduleThread._loop`: `croniter(self.cron,
datetime.now(self.tzinfo))`), so time is injected the way its API allows:
`DBOS.backfill_schedule(name, start, end)` "Enqueue[s] all executions of a schedule that would
have run between start and end. Each execution uses the same deterministic workflow ID as the
live scheduler" (dbos/_dbos.py), here a window days in the future; the run then judges
against `max(scheduled_at, the service's clock)`, its one checkpointed instant.

Missed firings: with `automatic_backfill` DBOS enqueues every firing since `last_fired_at`
(dbos/_scheduler.py, `dynamic_scheduler_loop`); fatctl enqueues one catch-up run per schedule
under a deterministic id, which two servers starting together both ask for and DBOS runs once
(`SetWorkflowID`: an existing id attaches instead of starting anew).

Rotation delivers over real SSH: the agents are real sshd hosts (tests/fixtures/sshd.py) in
the service's database, the credentials come from the Cloudflare emulator's R2 endpoint.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fatctl.clock import fixed
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.service.conftest import runtime_for, service_plane

DAY = timedelta(days=1)
ALL_OFF = {f"schedule_{n}": "off" for n in ("r2_rotate", "reconcile", "health_sweep",
                                            "backup_verify")}  # fmt: skip


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def _trail(db: Any, action: str) -> list[Any]:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(db) as session:
        return [e for e in repo.audit_trail(session) if e.action == action]


def _env(plane: Any, tmp_path: Path, **extra: str) -> dict[str, str]:
    url = plane.settings.database_url
    return fatctl_env(FATCTL_DATA_DIR=str(tmp_path), FATCTL_DATABASE_URL=url, **extra)


def test_scheduled_rotation_rotates_exactly_the_agents_near_expiry(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str, sshd_hosts: Any
) -> None:
    from dbos import DBOS

    from fatctl.remote.runner import Pool
    from fatctl.service.runtime import running
    from fatctl.services.common.leases import agent_lease
    from fatctl.services.common.targets import select_targets
    from fatctl.services.storage.r2_rotation import rotate_r2, stored_expiry
    from fatctl.state.leases import lease
    from tests.fixtures.sshd import _insert_agents

    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url)
    hosts = sshd_hosts(4)
    _insert_agents(plane.db, hosts)
    ident = hosts[0].identity
    op = ident.operator
    settings = dataclasses.replace(
        plane.settings, **{**ALL_OFF, "schedule_r2_rotate": ""}, operator_user=op,
        operator_key_file=ident.key_file, ssh_port=str(hosts[0].port),
        customer_user=ident.customer,
    )  # fmt: skip
    delivery = {"env_path": f"/home/{op}/r2.env", "after": f"touch /home/{op}/took"}
    # Issued at t0 (boxes 1, 2 and 4) and five days later (box 3): six days after t0, boxes 1,
    # 2 and 4 expire within the 2-day window and box 3 has six days left. Box 4 is held by
    # another run (a provision, a rebuild) while the schedule fires: left to the next run.
    t0 = datetime.now(UTC).replace(microsecond=0)
    targets = select_targets(plane.db, settings, all_agents=True)
    with Pool() as pool:
        rotate_r2(plane.db, plane.ring, settings, [*targets[:2], targets[3]], pool,
                  clock=fixed(t0), **delivery)  # fmt: skip
        rotate_r2(plane.db, plane.ring, settings, targets[2:3], pool, clock=fixed(t0 + 5 * DAY),
                  **delivery)  # fmt: skip
    for host in hosts:
        (host.home(op) / "took").unlink()

    runtime = runtime_for(plane)
    runtime.settings, runtime.schedules, runtime.rotation_delivery = settings, True, delivery
    with running(runtime), lease(plane.db, agent_lease(hosts[3].name), ttl_s=600):
        # The schedule as `fatctl serve` applies it (every 6 h), fired once six days ahead.
        window = (t0 + 6 * DAY, t0 + 6 * DAY + timedelta(hours=6))
        (handle,) = DBOS.backfill_schedule("r2-rotate", *window)
        result = handle.get_result()
        fired = handle.get_status()
    at = datetime.fromisoformat(result["now"])
    assert window[0] < at < window[1] and fired.queue_name == "sched-r2-rotate"
    assert fired.workflow_id == f"sched-r2-rotate-{at.isoformat()}"  # DBOS's own firing id
    counts = {k: result[k] for k in ("result", "rotated", "skipped", "busy", "failed")}
    assert counts == {"result": "ok", "rotated": 2, "skipped": 1, "busy": 1, "failed": 0}
    names = [h.name for h in hosts]
    assert [stored_expiry(plane.db, n)[2] for n in names] == [
        at + 7 * DAY, at + 7 * DAY, t0 + 12 * DAY, t0 + 7 * DAY]  # fmt: skip
    assert [(h.home(op) / "took").exists() for h in hosts] == [True, True, False, False]
    rotations = [e for e in _trail(plane.db, "creds.rotate") if e.actor == "schedule:r2-rotate"]
    assert sorted((e.target, e.result, _aware(e.at)) for e in rotations) == [
        (names[0], "ok", at), (names[1], "ok", at)]  # fmt: skip
    (run,) = _trail(plane.db, "schedule.run")
    detail = json.loads(run.detail)
    assert (run.actor, run.target, run.result, _aware(run.at)) == (
        "schedule:r2-rotate", "r2-rotate", "ok", at)  # fmt: skip
    assert (detail["rotated"], detail["skipped"], detail["busy"], detail["workflow_id"]) == (
        2, 1, 1, fired.workflow_id)  # fmt: skip
    # Four issued before, two by the schedule: nothing for the fresh box or the busy one.
    assert len(cloudflare_emulator._emulator.store.all("r2_credential")) == 6


def test_missed_schedule_runs_once_when_servers_start(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str
) -> None:
    """All servers were down over the yearly firing: the next two starts enqueue one run."""
    from dbos import DBOS
    from dbos._dbos import _get_dbos_instance

    from fatctl.service.runtime import running
    from fatctl.service.schedules import catch_up, catchup_id

    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url)
    # A firing the live thread cannot reach during the test: 1 January, 00:00 UTC.
    yearly = "0 0 0 1 1 *"
    settings = dataclasses.replace(plane.settings, **{**ALL_OFF, "schedule_reconcile": yearly})
    now = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    prev = datetime(2026, 1, 1, tzinfo=UTC)
    wfid = catchup_id("reconcile", prev)

    def start(executor: str) -> list[str]:
        rt = runtime_for(plane, executor_id=executor)
        rt.settings, rt.schedules, rt.clock = settings, True, fixed(now)
        with running(rt):
            started = [*DBOS.list_schedules()], catch_up(now)  # a second server racing it
            if started[1]:
                DBOS.retrieve_workflow(wfid).get_result()
            if executor == "first":  # the schedule last fired the year before
                sys_db = _get_dbos_instance()._sys_db
                sys_db.update_last_fired_at("reconcile", "2025-01-01T00:00:00+00:00")
        return started[1]

    assert start("first") == []  # never fired: a new database missed nothing
    assert start("second") == [wfid]
    assert start("third") == [wfid]  # asked again, attached to the first: no second run
    runs = _trail(plane.db, "schedule.run")
    assert [(e.actor, e.target, e.result) for e in runs] == [
        ("schedule:reconcile", "reconcile", "ok")
    ]

    env = _env(plane, tmp_path, FATCTL_SCHEDULE_RECONCILE=yearly, FATCTL_SCHEDULE_R2_ROTATE="off")
    listed = json.loads(run_fatctl("jobs", "list", "--json", env=env, timeout=60, check=0).stdout)
    by_name = {s["name"]: s for s in listed["schedules"]}
    assert by_name["reconcile"]["cron"] == yearly and by_name["reconcile"]["status"] == "ACTIVE"
    assert by_name["reconcile"]["next_run"].startswith(
        f"{datetime.now(UTC).year + 1}-01-01T00:00:00"
    )
    assert by_name["reconcile"]["last_result"].startswith("ok")
    assert by_name["r2-rotate"]["status"] == "off" and set(by_name) == {
        "r2-rotate", "reconcile", "health-sweep", "backup-verify"}  # fmt: skip
    assert [w["id"] for w in listed["workflows"]] == [wfid]
    shown = json.loads(
        run_fatctl("jobs", "show", wfid, "--json", env=env, timeout=60, check=0).stdout
    )
    assert shown["status"] == "SUCCESS" and shown["output"]["result"] == "ok"
    assert [s["name"] for s in shown["steps"]][:1] == ["sched_instant"]
    bad = run_fatctl("jobs", "show", "no such id!", env=env, timeout=60, check=2)
    assert len(bad.stderr.strip().splitlines()) == 1 and "workflow id" in bad.stderr


def test_bad_cron_is_refused_before_serving(tmp_path: Path) -> None:
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path), FATCTL_ENGINE="hcloud",
                     HCLOUD_TOKEN="x" * 64, FATCTL_SCHEDULE_RECONCILE="every hour")  # fmt: skip
    done = run_fatctl("serve", "--port", "1", env=env, timeout=60, check=2)
    assert done.stderr.strip().splitlines() == [
        "fatctl: error: FATCTL_SCHEDULE_RECONCILE: 'every hour' is not a cron expression "
        "(5 or 6 fields, or off)"
    ]


def test_health_sweep_schedule_calls_the_fleet_sweep(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str
) -> None:
    try:
        import fatctl.monitoring.sweep  # noqa: F401
    except ImportError:
        pytest.skip("fatctl.monitoring.sweep (issue 20, written in parallel) is not there yet")
    from dbos import DBOS

    from fatctl.service.runtime import running

    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url)
    runtime = runtime_for(plane)
    runtime.settings = dataclasses.replace(
        plane.settings, **{**ALL_OFF, "schedule_health_sweep": ""}
    )
    runtime.schedules = True
    start = datetime.now(UTC) + DAY
    with running(runtime):
        (handle,) = DBOS.backfill_schedule("health-sweep", start, start + timedelta(minutes=5))
        result = handle.get_result()
    assert (result["result"], result["probed"], result["down"]) == ("ok", 0, 0)  # no agents
    (run,) = _trail(plane.db, "schedule.run")
    assert (run.actor, run.target, run.result) == ("schedule:health-sweep", "health-sweep", "ok")
    assert json.loads(run.detail)["probed"] == 0


def test_two_servers_starting_together_run_the_missed_schedule_once(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str
) -> None:
    """Two real `fatctl serve` processes started at the same moment on one database: both
    find the yearly reconcile missed and enqueue its catch-up; it runs once, on one of them."""
    from dbos import DBOS
    from dbos._dbos import _get_dbos_instance

    from fatctl.secrets import generate_master_key
    from fatctl.service.runtime import running
    from fatctl.service.schedules import catchup_id, previous_fire
    from tests.fixtures.cli import start_fatctl
    from tests.integration.service.test_recovery import free_port, serve_env, wait_until

    key = generate_master_key()
    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url, master_key=key)
    yearly = "0 0 0 1 1 *"
    settings = dataclasses.replace(plane.settings, **{**ALL_OFF, "schedule_reconcile": yearly})
    rt = runtime_for(plane, executor_id="setup")
    rt.settings, rt.schedules = settings, True
    with running(rt):  # the schedule exists and last fired the year before its last firing
        assert [s["schedule_name"] for s in DBOS.list_schedules()] == ["reconcile"]
        _get_dbos_instance()._sys_db.update_last_fired_at("reconcile", "2001-01-01T00:00:00+00:00")
    wfid = catchup_id("reconcile", previous_fire(yearly, datetime.now(UTC)))

    env = {**serve_env(plane, key, tmp_path), **{f"FATCTL_{k.upper()}": "off" for k in ALL_OFF},
           "FATCTL_SCHEDULE_RECONCILE": yearly}  # fmt: skip
    logs = [(tmp_path / f"serve{i}.log").open("w") for i in range(2)]
    procs = [start_fatctl("serve", "--no-box", "--port", str(free_port()), "--executor-id",
                          f"server-{i}", env=env, stdout=logs[i], stderr=logs[i])
             for i in range(2)]  # fmt: skip
    try:
        from dbos import DBOSClient

        from fatctl.service.runtime import system_database_url

        client = DBOSClient(system_database_url=system_database_url(settings.database_url))
        try:

            def finished() -> bool:
                for i, proc in enumerate(procs):
                    if proc.poll() is not None:
                        pytest.fail((tmp_path / f"serve{i}.log").read_text())
                found = client.list_workflows(workflow_ids=[wfid])
                return bool(found) and found[0].status == "SUCCESS"

            wait_until("the catch-up run finished", finished, deadline_s=120)
            runs = client.list_workflows(name="sched_reconcile")
        finally:
            client.destroy()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
        for log in logs:
            log.close()
    assert [(w.workflow_id, w.executor_id in ("server-0", "server-1")) for w in runs] == [
        (wfid, True)
    ]
    audited = _trail(plane.db, "schedule.run")
    assert [(e.actor, e.result) for e in audited] == [("schedule:reconcile", "ok")]


def test_fan_out_holds_each_agents_lease_only_while_that_box_is_worked_on(
    migrated_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 28 M1: backup-verify over the whole fleet took every agent's lease at once and
    kept it for hours, so the API's destroy and the CLI failed with LeaseHeld meanwhile. Each
    box's lease is now taken at its turn and released when it is done; a box another run holds
    is skipped and counted busy."""
    from types import SimpleNamespace

    from fatctl.service import schedules
    from fatctl.services.common.leases import agent_lease
    from fatctl.state.leases import lease, read

    monkeypatch.setattr(schedules, "FAN_OUT", 1)  # one box at a time: the order is the list's
    names = ["alpha", "bravo", "charlie"]
    seen: dict[str, dict[str, bool]] = {}

    def one(pool: Any, target: Any) -> str:
        seen[target.name] = {n: read(migrated_engine, agent_lease(n)) is not None for n in names}
        return target.name

    targets: list[Any] = [SimpleNamespace(name=n) for n in names]
    with lease(migrated_engine, agent_lease("charlie"), ttl_s=600):
        results, busy = schedules._fan_out(migrated_engine, targets, one)
        assert (results, busy) == (["alpha", "bravo"], ["charlie"])
        # While alpha is verified, bravo is free (another command may take it), and alpha's
        # lease is gone by bravo's turn; charlie is the other run's all along.
        assert seen == {"alpha": {"alpha": True, "bravo": False, "charlie": True},
                        "bravo": {"alpha": False, "bravo": True, "charlie": True}}  # fmt: skip
        assert read(migrated_engine, agent_lease("bravo")) is None


def test_backup_verify_picks_degraded_agents_too(db_url: str) -> None:
    """Review 28 L9: backup-verify chose `ready` agents only, so a degraded one (the kind that
    most needs a checked backup) was never verified. Running agents with a backup are chosen;
    a suspended one and one with no backup known are not."""
    from sqlmodel import select

    from fatctl.service import schedules
    from fatctl.state import migrate
    from fatctl.state.db import make_engine, session_scope
    from fatctl.state.models import Agent, Backup
    from tests.fixtures.fleet_rows import seed_agents

    migrate.upgrade(db_url)
    seed_agents(db_url, 4)
    db = make_engine(db_url)
    states = ["ready", "degraded", "suspended", "degraded"]
    with session_scope(db) as session:
        for i, state in enumerate(states):
            agent = session.exec(select(Agent).where(Agent.name == f"agent{i:05d}")).one()
            agent.state = state
            session.add(agent)
            if i < 3:  # agent00003 has no backup known
                session.add(Backup(agent_pk=agent.id or 0, object_key=f"b{i}", kind="scheduled",
                                   created_at=datetime.now(UTC), size_bytes=1))  # fmt: skip
    try:
        assert schedules._agents_with_backups(db) == ["agent00000", "agent00001"]
    finally:
        db.dispose()
