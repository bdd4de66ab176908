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
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
