"""Plain DB-API connections (stdlib sqlite3, psycopg) for start-up-bound paths.

Importing SQLAlchemy costs more than listing 10,000 agents, so the schema gate and the fast
read paths (`fatctl/state/fastread.py`) speak DB-API directly. Writes always go through
SQLAlchemy/SQLModel; only reads with fixed SQL live here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fatctl.errors import ConfigError, StateError


def redacted_url(url: str) -> str:
    """A database URL safe to print: the password, if any, replaced."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def dialect(url: str) -> str:
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith(("postgresql", "postgres")):
        return "postgresql"
    raise ConfigError(
        f"unsupported FATCTL_DATABASE_URL {redacted_url(url)}: use sqlite:/// or postgresql://"
    )


def sqlite_path(url: str) -> str:
    return url.split("///", 1)[-1] or ":memory:"


def libpq_url(url: str) -> str:
    """An SQLAlchemy PostgreSQL URL as libpq understands it (no +driver part)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


@contextmanager
def connect(url: str) -> Iterator[Any]:
    """A DB-API connection; failures become one line naming the (redacted) database."""
    kind = dialect(url)
    try:
        if kind == "sqlite":
            import sqlite3

            # mode=rw: reading must never create an empty database file as a side effect
            conn: Any = sqlite3.connect(f"file:{sqlite_path(url)}?mode=rw", uri=True, timeout=30)
        else:
            import psycopg

            conn = psycopg.connect(libpq_url(url), connect_timeout=10)
    except StateError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StateError(f"cannot open database {redacted_url(url)}: {first}") from None
    try:
        yield conn
    finally:
        conn.close()


def stamped_revision(conn: Any) -> str | None:
    """The Alembic revision stamped in the database, or None when never migrated."""
    cur = conn.cursor()
    try:
        cur.execute("SELECT version_num FROM alembic_version")
    except Exception:
        conn.rollback()
        return None
    row = cur.fetchone()
    return row[0] if row else None


def fetch_dicts(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run a read query; `?` placeholders are adapted to the driver's style."""
    if type(conn).__module__.startswith("psycopg"):
        sql = sql.replace("?", "%s")
    cur = conn.cursor()
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
