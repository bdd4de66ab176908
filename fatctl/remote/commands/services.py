"""systemd and box-health commands: the few verbs fleet operations need, as argv strings."""

from __future__ import annotations

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


def gateway_back_after_keep_stopped() -> str:
    """The gateway serving again on a box whose backup kept it stopped (`fat-backup run
    --keep-stopped`: the unit runtime-masked, /data unmounted) and which stays after all (a
    move given up): /data mounted, the mask lifted, the gateway started. On a box that serves
    already each of these changes nothing."""
    return script(
        systemctl("start", L.DATA_UNIT),
        run(["systemctl", "unmask", "--runtime", L.GATEWAY_UNIT]),
        systemctl("start", L.GATEWAY_UNIT),
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
