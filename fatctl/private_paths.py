"""Directories and files fatctl makes on the operator's machine: owner-only, whatever the umask.

The data dir holds the state database (sealed secrets, pinned host keys, the audit trail), the
Pulumi file backend and fatctl's known_hosts; with the usual umask 022 they would be readable
by every local user. A mode passed to mkdir/open is only an upper bound (the umask clears
bits), so each path fatctl creates is chmod-ed to its exact mode right after. Directories that
already exist are the operator's choice and are left alone; the database's files are fatctl's
own and are tightened wherever they were left looser.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
# SQLite's companions of a database file: it creates them with the database file's own mode.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """`path` as a directory, each missing component created 0700; existing ones untouched."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made by a concurrent run in between: its mode is that run's choice
        os.chmod(directory, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists; an existing one is only `tighten`-ed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    """Drop group and other bits from a file fatctl made (a no-op if absent or not ours)."""
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except (FileNotFoundError, PermissionError):
        # Gone (SQLite removes its WAL on close) or another user's file, which the operator
        # shares on purpose: there is nothing of ours to tighten.
        return


def private_sqlite(path: Path) -> None:
    """The database file 0600 in a private dir, and its companions tightened: SQLite copies
    the database file's mode onto the -wal/-shm/-journal files it makes later."""
    private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        tighten(path.with_name(path.name + suffix))
