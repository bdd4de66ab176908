"""The state layer on SQLite and PostgreSQL: agents, transitions, secrets at rest, leases."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import replace

import pytest
from sqlalchemy import text

from fatctl.domain import AgentState
from fatctl.errors import BadInput, LeaseHeld, SecretError, StateError
from fatctl.pacing.poll import Poll
from fatctl.secrets import generate_master_key, keyring_from
from fatctl.sensitive import Sensitive
from fatctl.services.agents.records import NewAgent, create_agent, delete_agent
from fatctl.services.common.secret_names import GATEWAY_TOKEN_SECRET
from fatctl.state import repo, secret_store
from fatctl.state.db import session_scope
from fatctl.state.fastread import list_agent_rows
from fatctl.state.leases import lease

REQ = NewAgent("alpha", "ann@example.com", "managed", "cx23", "fsn1", "debian-12", "2026.9.6")


def test_create_agent_seals_material(db_url, migrated_engine, keyring) -> None:
    agent = create_agent(migrated_engine, keyring, REQ, "tester")
    with session_scope(migrated_engine) as s:
        stored = repo.get_agent(s, "alpha")
        assert stored.state == "requested" and stored.agent_id == agent.agent_id
        token = secret_store.get(s, keyring, agent_pk=stored.id, name=GATEWAY_TOKEN_SECRET)
        assert len(token.reveal()) > 30
        assert [e.action for e in repo.audit_trail(s, target="alpha")] == ["agent.create"]
    with migrated_engine.connect() as conn:
        blobs = conn.execute(text("SELECT ciphertext, wrapped_key FROM secrets")).all()
    assert blobs and all(token.reveal().encode() not in bytes(b[0]) for b in blobs)
    rows = list_agent_rows(db_url)
    assert [(r["name"], r["owner"], r["state"]) for r in rows] == [
        ("alpha", "ann@example.com", "requested")
    ]


def test_duplicate_and_bad_input_write_nothing(migrated_engine, keyring) -> None:
    create_agent(migrated_engine, keyring, REQ, "tester")
    with pytest.raises(BadInput, match="already exists"):
        create_agent(migrated_engine, keyring, REQ, "tester")
    bad = NewAgent("beta", "not-an-email", "managed", "cx23", "fsn1", "debian-12", "2026.9.6")
    with pytest.raises(BadInput):
        create_agent(migrated_engine, keyring, bad, "tester")
    with migrated_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM agents")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 1


def test_state_machine_enforced(migrated_engine, keyring) -> None:
    create_agent(migrated_engine, keyring, REQ, "t")
    with session_scope(migrated_engine) as s:
        agent = repo.get_agent(s, "alpha")
        with pytest.raises(StateError, match="cannot go from requested to ready"):
            repo.set_state(s, agent, AgentState.READY)
        repo.set_state(s, agent, AgentState.PROVISIONING)
        repo.set_state(s, agent, AgentState.READY)
    with pytest.raises(StateError) as info:
        delete_agent(migrated_engine, "alpha", "t")
    assert "run `fatctl destroy alpha` first" in info.value.one_line()


def test_delete_requested_agent_removes_its_rows(migrated_engine, keyring) -> None:
    create_agent(migrated_engine, keyring, REQ, "t")
    delete_agent(migrated_engine, "alpha", "t")
    with migrated_engine.connect() as conn:
        for table in ("agents", "secrets", "host_keys"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0


def test_rotate_master_key(migrated_engine, keyring) -> None:
    create_agent(migrated_engine, keyring, REQ, "t")
    new_key = generate_master_key()
    old_material = None  # no previous keys: the old records cannot be opened
    with session_scope(migrated_engine) as s, pytest.raises(SecretError):
        secret_store.rotate_master(s, keyring_from(Sensitive(new_key), old_material))
    import base64

    old_b64 = base64.b64encode(keyring.current.material).decode()
    both = keyring_from(Sensitive(new_key), Sensitive(old_b64))
    with session_scope(migrated_engine) as s:
        assert secret_store.rotate_master(s, both) == (2, 0)
    only_new = keyring_from(Sensitive(new_key))
    with session_scope(migrated_engine) as s:
        agent = repo.get_agent(s, "alpha")
        assert secret_store.get(s, only_new, agent_pk=agent.id, name=GATEWAY_TOKEN_SECRET)


def _hold(url: str, name: str, seconds: float, ready) -> None:  # type: ignore[no-untyped-def]
    from fatctl.state.db import make_engine

    engine = make_engine(url)
    with lease(engine, name, ttl_s=60):
        ready.set()
        time.sleep(seconds)


def test_lease_excludes_another_process_and_frees_on_death(db_url, migrated_engine) -> None:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold, args=(db_url, "agent:alpha", 60, ready))
    proc.start()
    try:
        assert ready.wait(30)
        with (
            pytest.raises(LeaseHeld, match="agent:alpha is busy"),
            lease(migrated_engine, "agent:alpha"),
        ):
            pass
        proc.kill()  # SIGKILL: no release runs; the lease must still be taken over
        proc.join(10)
        with lease(migrated_engine, "agent:alpha", wait_s=5, poll=Poll(0.1)) as holder:
            assert holder
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()


def test_a_wave_is_marked_running_in_one_write_keeping_earlier_start_times(
    migrated_engine, keyring
) -> None:
    """`mark_running` on both databases: pending steps get a start time, a resumed step that
    was already running keeps its first one, steps of other waves are left alone."""
    import dataclasses
    from datetime import UTC

    from fatctl.domain import RolloutPolicy
    from fatctl.services.rollout import records as rec
    from fatctl.services.rollout.plan import Wave

    for name in ("wave-1", "wave-2", "wave-3"):
        create_agent(migrated_engine, keyring, dataclasses.replace(REQ, name=name), "tester")
    waves = [Wave(0, ("wave-1", "wave-2")), Wave(1, ("wave-3",))]
    rid = rec.create(migrated_engine, kind="upgrade", version="2026.9.7",
                     policy=RolloutPolicy(), waves=waves, actor="tester")  # fmt: skip
    _, steps = rec.load(migrated_engine, rid)
    ids = {name: step.id for step, name in steps}
    rec.update_step(migrated_engine, ids["wave-1"], phase="running")  # started before a crash
    _, steps = rec.load(migrated_engine, rid)
    first = {name: step.started_at for step, name in steps}["wave-1"]
    time.sleep(0.05)
    rec.mark_running(migrated_engine, [ids["wave-1"], ids["wave-2"]])
    _, steps = rec.load(migrated_engine, rid)
    by_name = {name: step for step, name in steps}
    assert [by_name[n].phase for n in ("wave-1", "wave-2", "wave-3")] == [
        "running",
        "running",
        "pending",
    ]
    assert by_name["wave-1"].started_at == first
    later = by_name["wave-2"].started_at
    assert first is not None and later is not None and by_name["wave-3"].started_at is None
    assert later.replace(tzinfo=later.tzinfo or UTC) > first.replace(tzinfo=first.tzinfo or UTC)


def test_a_master_key_the_database_never_saw_seals_nothing(migrated_engine, keyring) -> None:
    """Found by a hostile operator's typo: FATCTL_MASTER_KEY set to a key the database has never
    seen sealed new credentials, and a later rotate-master could not open the mix. Now any
    write under such a key is refused before anything is sealed, and the table is unchanged."""
    create_agent(migrated_engine, keyring, REQ, "t")
    stranger = keyring_from(Sensitive(generate_master_key()))
    with migrated_engine.connect() as conn:
        before = conn.execute(text("SELECT key_id, ciphertext FROM secrets ORDER BY id")).all()
    with session_scope(migrated_engine) as s, pytest.raises(SecretError) as info:
        agent = repo.get_agent(s, "alpha")
        secret_store.put(s, stranger, agent_pk=agent.id, name="x", value=Sensitive("v"))
    assert "opens none of the stored secrets" in info.value.one_line()
    with migrated_engine.connect() as conn:
        after = conn.execute(text("SELECT key_id, ciphertext FROM secrets ORDER BY id")).all()
    assert after == before
    with session_scope(migrated_engine) as s:  # the fleet's own key still writes
        agent = repo.get_agent(s, "alpha")
        secret_store.put(s, keyring, agent_pk=agent.id, name="x", value=Sensitive("v"))


def test_suspend_and_archive_transitions(migrated_engine, keyring) -> None:
    """Issue 18: a ready agent may be suspended (box gone, state kept) and resumed through
    provisioning; an archive only ends in `destroying` (purge), never back to a box."""
    create_agent(migrated_engine, keyring, REQ, "t")
    with session_scope(migrated_engine) as s:
        agent = repo.get_agent(s, "alpha")
        repo.set_state(s, agent, AgentState.PROVISIONING)
        repo.set_state(s, agent, AgentState.READY)
        repo.set_state(s, agent, AgentState.SUSPENDED)
        repo.set_state(s, agent, AgentState.PROVISIONING)
        repo.set_state(s, agent, AgentState.READY)
        repo.set_state(s, agent, AgentState.ARCHIVED)
        with pytest.raises(StateError, match="cannot go from archived to provisioning"):
            repo.set_state(s, agent, AgentState.PROVISIONING)
        repo.set_state(s, agent, AgentState.DESTROYING)


def test_backup_rows_recorded_once_and_deleted_with_the_agent(migrated_engine, keyring) -> None:
    from datetime import UTC, datetime

    from fatctl.state.models import Backup

    create_agent(migrated_engine, keyring, REQ, "t")
    key = "agents/x/backups/20261207T030000Z-scheduled.tar.gz.age"
    at = datetime(2026, 12, 7, 3, tzinfo=UTC)
    with session_scope(migrated_engine) as s:
        agent = repo.get_agent(s, "alpha")
        agent.backup_recipient = "age1" + "q" * 58
        repo.record_backup(s, agent, Backup(agent_pk=0, object_key=key, kind="scheduled",
                                            created_at=at, size_bytes=5 * 2**32))  # fmt: skip
        repo.record_backup(s, agent, Backup(agent_pk=0, object_key=key, kind="scheduled",
                                            created_at=at, size_bytes=7, sha256="ab"))  # fmt: skip
    with session_scope(migrated_engine) as s:
        rows = repo.backups_of(s, repo.get_agent(s, "alpha"))
        assert [(r.object_key, r.size_bytes, r.sha256) for r in rows] == [(key, 7, "ab")]
    # Keys are below each agent's prefix: another agent's backup of the same name is its own.
    create_agent(migrated_engine, keyring, replace(REQ, name="beta"), "t")
    with session_scope(migrated_engine) as s:
        repo.record_backup(s, repo.get_agent(s, "beta"), Backup(agent_pk=0, object_key=key,
                           kind="scheduled", created_at=at, size_bytes=9))  # fmt: skip
    with session_scope(migrated_engine) as s:
        assert [r.size_bytes for r in repo.backups_of(s, repo.get_agent(s, "alpha"))] == [7]
        assert [r.size_bytes for r in repo.backups_of(s, repo.get_agent(s, "beta"))] == [9]
    delete_agent(migrated_engine, "alpha", "t")
    with migrated_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM backups")).scalar() == 1
