"""Migrations on both engines: upgrade to head, downgrade to base, and models == migrations."""

from __future__ import annotations

from sqlalchemy import inspect

from fatctl.state import migrate
from fatctl.state.db import HEAD_REVISION, current_revision, ensure_migrated, make_engine

TABLES = {
    "owners", "agents", "ssh_keys", "host_keys", "secrets", "dns_records",
    "rollouts", "rollout_steps", "audit_events", "leases",
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
