"""Database engine, sessions, and the "is this database migrated?" gate.

The gate reads `alembic_version` with plain SQL and compares it to `HEAD_REVISION`, so ordinary
commands never import Alembic (start-up time); a test keeps `HEAD_REVISION` equal to Alembic's
real head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fatctl.errors import ConfigError, StateError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

HEAD_REVISION = "0001"


def redacted_url(url: str) -> str:
    """A database URL safe to print: the password, if any, replaced."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite also the data dir, foreign keys and a busy timeout."""
    from sqlalchemy import create_engine, event

    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith(("postgresql", "postgres")):
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return create_engine(url, pool_pre_ping=True)
    raise ConfigError(
        f"unsupported FATCTL_DATABASE_URL {redacted_url(url)}: use sqlite:/// or postgresql://"
    )


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or None when it was never migrated."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import OperationalError

    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as exc:
        first = str(exc.orig).splitlines()[0] if exc.orig else "connection failed"
        raise StateError(f"cannot open database {redacted_url(str(engine.url))}: {first}") from None


def ensure_migrated(engine: Engine) -> None:
    """Refuse to work on a database that is not at the code's schema revision."""
    rev = current_revision(engine)
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
