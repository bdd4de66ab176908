"""Stale stack locks of Pulumi's file (DIY) backend: find them, and clear the ones whose holder
is provably dead.

A run killed mid-update leaves `.pulumi/locks/<org>/<project>/<stack>/<id>.json` holding the
holder's pid, username, hostname and timestamp; every later run then fails with "the stack is
currently locked". A lock is cleared only when its hostname is this host and its pid is not a
running process: a lock from another host, or from a live process here, is a real concurrent
update and is left alone.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_ORG = "organization"  # the DIY backend's only organisation


@dataclass(frozen=True)
class StackLock:
    path: Path
    pid: int
    hostname: str
    username: str
    timestamp: str


def file_backend_root(backend_url: str) -> Path | None:
    """The directory of a `file://` backend; None for s3://, azblob:// or Pulumi Cloud."""
    parsed = urlparse(backend_url)
    if parsed.scheme != "file":
        return None
    path = unquote(parsed.path or "")
    if parsed.netloc and parsed.netloc != "localhost":  # `file://~/x` or `file://relative`
        path = parsed.netloc + path
    return Path(os.path.expanduser(path))


def lock_dir(backend_url: str, project: str, stack: str) -> Path | None:
    root = file_backend_root(backend_url)
    if root is None:
        return None
    return root / ".pulumi" / "locks" / DEFAULT_ORG / project / stack


def read_locks(directory: Path) -> list[StackLock]:
    """Every lock file in `directory`; unreadable ones count as held by an unknown live holder."""
    locks = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
            pid = int(doc.get("pid", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            pid, doc = -1, {}
        locks.append(
            StackLock(
                path=path,
                pid=pid,
                hostname=str(doc.get("hostname", "")),
                username=str(doc.get("username", "")),
                timestamp=str(doc.get("timestamp", "")),
            )
        )
    return locks


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def is_stale(lock: StackLock, *, hostname: str, alive: Callable[[int], bool] = pid_alive) -> bool:
    """Stale only if held on this host by a process that no longer exists."""
    return lock.pid > 0 and lock.hostname == hostname and not alive(lock.pid)


def clear_stale_locks(
    backend_url: str,
    project: str,
    stack: str,
    *,
    hostname: str | None = None,
    alive: Callable[[int], bool] = pid_alive,
) -> tuple[list[StackLock], list[StackLock]]:
    """Remove stale locks; returns (cleared, still held)."""
    directory = lock_dir(backend_url, project, stack)
    if directory is None:
        return [], []
    host = hostname or socket.gethostname()
    cleared, held = [], []
    for lock in read_locks(directory):
        if is_stale(lock, hostname=host, alive=alive):
            lock.path.unlink(missing_ok=True)
            cleared.append(lock)
        else:
            held.append(lock)
    return cleared, held


def describe(lock: StackLock) -> str:
    """One line for the operator; no secret is in a lock file."""
    who = f"{lock.username}@{lock.hostname}" if lock.hostname else "an unknown holder"
    return f"locked by pid {lock.pid} on {who} since {lock.timestamp or 'unknown time'}"
