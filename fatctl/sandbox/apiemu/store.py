"""A small SQLite document store: JSON objects by (kind, id), id sequences and settings.

SQLite (stdlib) rather than JSON files because the emulators serve concurrent requests from a
thread pool and action workers; one connection behind a re-entrant lock keeps every
read-modify-write atomic, and WAL keeps the file consistent if the process is killed.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SCHEMA = """
-- id: an integer (Hetzner) or a 32-hex string (Cloudflare); SQLite keeps each as given
CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, id NOT NULL, data TEXT NOT NULL,
                                    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def now_iso() -> str:
    """A timestamp as the clouds write them (ISO 8601, UTC, seconds)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Store:
    """JSON documents in one SQLite file; every public method is atomic."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _exclusive(path.with_suffix(".lock"))
        if not path.exists():  # it holds the emulator's API token: owner-only
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._depth = 0

    @contextmanager
    def tx(self) -> Iterator[Store]:
        """One atomic unit of work; nested uses join the outer transaction."""
        with self.lock:
            self._depth += 1
            if self._depth == 1:
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                if self._depth == 1:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                if self._depth == 1:
                    self._conn.execute("COMMIT")
            finally:
                self._depth -= 1

    def get(self, kind: str, obj_id: int | str) -> dict[str, Any] | None:
        with self.lock:
            row = self._conn.execute(
                "SELECT data FROM objects WHERE kind=? AND id=?", (kind, obj_id)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = self._conn.execute(
                "SELECT data FROM objects WHERE kind=? ORDER BY id", (kind,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def put(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO objects(kind, id, data) VALUES (?, ?, ?)",
                (kind, doc["id"], json.dumps(doc, sort_keys=True)),
            )
        return doc

    def delete(self, kind: str, obj_id: int | str) -> None:
        with self.lock:
            self._conn.execute("DELETE FROM objects WHERE kind=? AND id=?", (kind, obj_id))

    def setting(self, key: str, default: str | None = None) -> str | None:
        with self.lock:
            row = self._conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, value)
            )

    def next_id(self, sequence: str, start: int = 1) -> int:
        """The next number of a persistent sequence (ids, address counters)."""
        with self.tx():
            current = int(self.setting(f"seq:{sequence}", str(start - 1)) or start - 1)
            self.set_setting(f"seq:{sequence}", str(current + 1))
        return current + 1

    def close(self) -> None:
        with self.lock:
            self._conn.close()
            os.close(self._lock_fd)  # closing the descriptor releases the flock


def _exclusive(lock_path: Path) -> int:
    """One emulator per state dir: two would each keep their own rate budget, action workers
    and id caches over one database."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"{lock_path.parent} is in use by another emulator") from None
    return fd
