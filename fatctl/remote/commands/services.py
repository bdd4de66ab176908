"""systemd and box-health commands: the few verbs fleet operations need, as argv strings."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from cloud_init import layout as L
from fatctl.remote.commands.shell import run, script

SYSTEMCTL_ACTIONS = frozenset(
    {"start", "stop", "restart", "reload", "enable", "disable", "is-active", "status"}
)


def systemctl(action: str, unit: str) -> str:
    """`systemctl ACTION UNIT`, refusing verbs outside the known set (no `daemon-reexec` typos)."""
    if action not in SYSTEMCTL_ACTIONS:
        raise ValueError(f"unsupported systemctl action {action!r}")
    if not unit or unit.startswith("-"):
        raise ValueError(f"bad unit name {unit!r}")
    return run(["systemctl", action, "--no-pager", unit])


BACKUP_WAIT_S = 600  # a backup of a large state takes minutes; the lock is held throughout


def unmask_after_keep_stopped() -> str:
    """Undo `fat-backup run --stop-gateway --keep-stopped` on a box that stays after all (a
    move given up): wait for a backup still running (its fatctl killed: when it ends it would
    stop /data, and with it the gateway, again), then lift the gateway's runtime mask. The
    gateway's `Requires=` mounts /data again when it starts (where the box has R2 at all)."""
    return script(
        f"exec 9>{shlex.quote(L.BACKUP_LOCK)}",
        f"flock -w {BACKUP_WAIT_S} 9",
        run(["systemctl", "unmask", "--runtime", L.GATEWAY_UNIT]),
    )


def daemon_reload() -> str:
    return run(["systemctl", "daemon-reload"])


def fat_health() -> str:
    """The box's own health report as JSON (`fatctl.domain.HealthReport` fields)."""
    return run(["fat-health", "--json"])


def openclaw_cli(args: Sequence[str]) -> str:
    """The `openclaw` CLI as the gateway's own user, with the gateway's config and state (so
    what it writes, a channel's login, is the service's to read), run from root. The gateway's
    environment file is sourced by root's shell and passed on, never printed."""
    env = [f"HOME={L.STATE_DIR}", f"OPENCLAW_CONFIG_PATH={L.OPENCLAW_CONFIG}",
           f"OPENCLAW_STATE_DIR={L.STATE_DIR}"]  # fmt: skip
    cli = run(["runuser", "-u", L.SERVICE_USER, "--", "env", *env,
               f"{L.RUNTIME_ROOT}/current/bin/openclaw", *args])  # fmt: skip
    return f"set -a; . {L.GATEWAY_ENV}; set +a; cd {L.STATE_DIR} && exec {cli}"
