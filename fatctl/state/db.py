"""Database engine, sessions, and the "is this database migrated?" gate.

The gate reads `alembic_version` over plain DB-API (`rawdb`) and compares it to `HEAD_REVISION`,
so ordinary commands import neither Alembic nor, for fast reads, SQLAlchemy; a test keeps
`HEAD_REVISION` equal to Alembic's real head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fatctl.errors import StateError
from fatctl.private_paths import private_sqlite
from fatctl.state.rawdb import connect, dialect, sqlite_path, stamped_revision

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

HEAD_REVISION = "0014"


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite also the data dir, foreign keys and a busy timeout.

    The SQLite file is made owner-only here, before SQLite would create it with the umask's
    mode: it holds sealed secrets and the audit trail.
    """
    from sqlalchemy import create_engine, event

    if dialect(url) == "sqlite":
        path = sqlite_path(url)
        if path != ":memory:":
            private_sqlite(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    _, rest = url.split("://", 1)
    return create_engine(f"postgresql+psycopg://{rest}", pool_pre_ping=True)


def current_revision(url: str) -> str | None:
    """The revision stamped in the database, or None when it was never migrated."""
    if dialect(url) == "sqlite" and not Path(sqlite_path(url)).exists():
        return None
    with connect(url) as conn:
        return stamped_revision(conn)


def ensure_migrated(url: str) -> None:
    """Refuse to work on a database that is not at the code's schema revision."""
    rev = current_revision(url)
    if rev is None:
        raise StateError("the database is not initialised", hint="run `fatctl db upgrade` first")
    if rev != HEAD_REVISION:
        raise StateError(
            f"the database is at schema revision {rev}, this fatctl needs {HEAD_REVISION}",
            hint="run `fatctl db upgrade`",
        )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
