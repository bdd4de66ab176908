"""The box's `fat-backup` commands, as fatctl runs them over SSH (pure strings).

Every command asks for `--json`: the script prints exactly one JSON object on stdout (its
fields are documented in templates/scripts/fat-backup.sh.j2), which fatctl parses.
"""

from __future__ import annotations

from cloud_init import layout as L
from fatctl.remote.commands.shell import run


def run_backup(kind: str, *, stop_gateway: bool = False, keep_stopped: bool = False) -> str:
    """Take a backup now; `stop_gateway` for a consistent copy before a risky change, and
    `keep_stopped` when the box is about to go (rebuild, move, suspend, archive)."""
    argv = [L.BACKUP_SCRIPT, "run", "--kind", kind, "--json"]
    if stop_gateway:
        argv.append("--stop-gateway")
        if keep_stopped:
            argv.append("--keep-stopped")
    return run(argv)


def list_backups() -> str:
    return run([L.BACKUP_SCRIPT, "list", "--json"])


def verify_backup(name: str | None) -> str:
    """Open an archive in scratch space (`None`: the newest); the gateway is not touched."""
    which = ["--newest"] if name is None else [name]
    return run([L.BACKUP_SCRIPT, "verify", *which, "--json"])


def restore_backup(name: str, *, start: bool = True) -> str:
    argv = [L.BACKUP_SCRIPT, "restore", name, "--activate", "--json"]
    if not start:
        argv.append("--no-start")
    return run(argv)


def drop_identity() -> str:
    """Remove the delivered backup identity (the script removes it too; this covers a script
    that never ran, or was killed)."""
    return run(["rm", "-f", L.BACKUP_IDENTITY])
