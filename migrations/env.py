"""Alembic environment: runs migrations against the URL fatctl passes in, never an ini file."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import fatctl.state.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from fatctl.state.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite's batch mode rebuilds a table (copy, drop, rename): with foreign keys
            # enforced, dropping `agents` while other rows point at it fails, so a downgrade
            # of a fleet with agents died half-way. They are checked again once it is done.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            if broken:
                raise RuntimeError(f"the migration left {len(broken)} dangling foreign keys")
    engine.dispose()


run_migrations()
