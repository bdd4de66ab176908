"""Migrations on both engines: upgrade to head, downgrade to base, and models == migrations."""

from __future__ import annotations

from sqlalchemy import inspect

from fatctl.state import migrate
from fatctl.state.db import HEAD_REVISION, current_revision, ensure_migrated, make_engine

TABLES = {
    "owners", "agents", "ssh_keys", "host_keys", "secrets", "dns_records",
    "rollouts", "rollout_steps", "audit_events", "leases", "backups", "lifecycle_ops",
}  # fmt: skip


def test_head_constant_matches_alembic() -> None:
    assert migrate.head_revision() == HEAD_REVISION


def test_upgrade_check_downgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(db_url) is None
    migrate.upgrade(db_url)
    assert current_revision(db_url) == HEAD_REVISION
    ensure_migrated(db_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    migrate.check(db_url)  # raises when models and migrations disagree
    migrate.downgrade(db_url, "base")
    assert not (TABLES & set(inspect(engine).get_table_names()))
    engine.dispose()


def test_check_detects_drift(db_url: str) -> None:
    """A table the migrations know nothing about is reported: the check can fail."""
    import pytest
    from sqlalchemy import Column, Integer, Table
    from sqlmodel import SQLModel

    from fatctl.errors import StateError

    migrate.upgrade(db_url)
    extra = Table("drift_probe", SQLModel.metadata, Column("id", Integer, primary_key=True))
    try:
        with pytest.raises(StateError, match="disagree"):
            migrate.check(db_url)
    finally:
        SQLModel.metadata.remove(extra)


def test_0008_keeps_agents_and_defaults_the_new_columns(db_url: str) -> None:
    """An agent made before 0008 gets no recipient and no suspend/purge times; down again
    drops them and the tables without touching the agent."""
    from sqlalchemy import text

    engine = make_engine(db_url)
    migrate.upgrade(db_url, "0007")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO owners (id, email, plan, created_at) "
                          "VALUES (1, 'a@example.com', 'managed', CURRENT_TIMESTAMP)"))  # fmt: skip
        conn.execute(text(
            "INSERT INTO agents (name, agent_id, owner_id, state, server_type, location, image, "
            "runtime_version, engine, server_id, ipv4, ipv6, primary_ipv4_id, primary_ipv6_id, "
            "firewall_id, last_step, last_error, model, model_base_url, created_at, updated_at) "
            "VALUES ('alpha', 'id1', 1, 'ready', 'cx23', 'fsn1', 'debian-12', '2026.9.6', '', "
            "'', '', '', '', '', '', '', '', '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ))  # fmt: skip
    migrate.upgrade(db_url, "0008")
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT backup_recipient, suspended_at, purge_after FROM agents")
        ).one()
    assert tuple(row) == ("", None, None)
    migrate.downgrade(db_url, "0007")
    assert not ({"backups", "lifecycle_ops"} & set(inspect(engine).get_table_names()))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM agents")).scalar() == "alpha"
    migrate.downgrade(db_url, "base")
    engine.dispose()
