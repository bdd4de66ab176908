"""systemd and box-health commands: the few verbs fleet operations need, as argv strings."""

from __future__ import annotations

from fatctl.remote.commands.shell import run

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


def daemon_reload() -> str:
    return run(["systemctl", "daemon-reload"])


def fat_health() -> str:
    """The box's own health report as JSON (`fatctl.domain.HealthReport` fields)."""
    return run(["fat-health", "--json"])
