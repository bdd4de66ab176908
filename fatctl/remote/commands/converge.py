"""Pure builders for converging a live box's files: read, back up, write, restore, reload.

Every box path is prefixed with `ConvergeLayout.root` ("" on a real box), so the integration
tests run these same commands on a tree in a test host's home. Before the first write of a
rollout, the files about to change are copied to `<state>/<rollout id>/` with a manifest
(`<n> present|absent <path>` per line); the manifest appears only when the copy is complete (the
directory is renamed into place), and a later run of the same rollout never overwrites it, so
a resumed or aborted rollout always restores what the box held before that rollout touched it.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cloud_init import layout as L
from fatctl.remote.commands.files import atomic_write
from fatctl.remote.commands.shell import maybe_sudo, script

UNIT_DIR = "/etc/systemd/system/"
CADDY = "caddy.service"
SSH = "ssh.service"
NFTABLES = "nftables.service"

# (path or directory prefix, units to restart, units to reload): what a changed file affects.
_EFFECTS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("/etc/caddy/", (), (CADDY,)),
    # sshd is restarted, not reloaded: on SIGHUP it re-execs and refuses new connections for a
    # moment (the health gate's among them); a restart returns once it listens, sessions survive.
    ("/etc/ssh/sshd_config.d/", (SSH,), ()),
    ("/etc/nftables.conf", (), (NFTABLES,)),
    (L.RCLONE_CONFIG, (L.DATA_UNIT, L.GATEWAY_UNIT), ()),
    # Read when the mount starts (unlike the credential script, which it runs every 30 s).
    (L.R2_AWS_CONFIG, (L.DATA_UNIT, L.GATEWAY_UNIT), ()),
    (UNIT_DIR + L.DATA_UNIT, (L.DATA_UNIT, L.GATEWAY_UNIT), ()),
    (UNIT_DIR + L.GATEWAY_PATH_UNIT, (L.GATEWAY_PATH_UNIT,), ()),
    (UNIT_DIR + L.GATEWAY_UNIT, (L.GATEWAY_UNIT,), ()),
    (L.OPENCLAW_CONFIG, (L.GATEWAY_UNIT,), ()),
    # The gateway reads its skills when it starts.
    (L.SKILLS_DIR + "/", (L.GATEWAY_UNIT,), ()),
    # A (re)written timer is re-armed with its new schedule.
    (UNIT_DIR + L.BACKUP_TIMER, (L.BACKUP_TIMER,), ()),
)
# Units a new or changed file must leave enabled: they arrive after boot (files.AFTER_BOOT),
# so nothing else enables them, on fresh boxes and existing ones alike.
_ENABLE: tuple[tuple[str, str], ...] = ((UNIT_DIR + L.BACKUP_TIMER, L.BACKUP_TIMER),)
# Restart order: sshd first, storage before the gateway that needs it, the gateway before its path
# unit.
_ORDER = (SSH, L.DATA_UNIT, L.GATEWAY_UNIT, L.GATEWAY_PATH_UNIT, L.BACKUP_TIMER)


@dataclass(frozen=True)
class ConvergeLayout:
    """Where a box's files live and how its services are told about changes.

    `service` is a template with `{action}` (restart or reload-or-restart) and `{unit}`.
    `owners` sets each file's rendered owner; a test tree in a login user's home cannot.
    """

    root: str = ""
    state: str = "/var/lib/fatctl/converge"
    daemon_reload: str = "systemctl daemon-reload"
    service: str = "systemctl {action} --no-pager {unit}"
    owners: bool = True
    sudo: bool = True

    def on_box(self, path: str) -> str:
        if not path.startswith("/") or ".." in path.split("/") or "\n" in path:
            raise ValueError(f"box path must be absolute and plain: {path!r}")
        return f"{self.root}{path}"

    def backup_dir(self, rollout_id: int) -> str:
        return f"{self.state}/{int(rollout_id)}"

    def wrap(self, command: str) -> str:
        return maybe_sudo(command, needed=self.sudo)


@dataclass(frozen=True)
class Actions:
    """What must happen after files changed, in the order it must happen."""

    daemon_reload: bool = False
    restart: tuple[str, ...] = ()
    reload: tuple[str, ...] = ()
    enable: tuple[str, ...] = ()  # enabled before the restarts (which start them)

    @property
    def empty(self) -> bool:
        return not (self.daemon_reload or self.restart or self.reload or self.enable)


def actions_for(paths: Iterable[str]) -> Actions:
    """Only the services a change affects: no gateway restart for a Caddyfile edit."""
    restart: set[str] = set()
    reload: set[str] = set()
    enable: set[str] = set()
    units = False
    for path in paths:
        units = units or path.startswith(UNIT_DIR)
        enable.update(unit for unit_path, unit in _ENABLE if path == unit_path)
        for prefix, to_restart, to_reload in _EFFECTS:
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
                restart.update(to_restart)
                reload.update(to_reload)
    ordered = tuple(u for u in _ORDER if u in restart)
    return Actions(units, ordered, tuple(sorted(reload)), tuple(sorted(enable)))


def read_files(layout: ConvergeLayout, paths: Sequence[str]) -> str:
    """Print, per path in order, `== <n> present <mode> <owner>` and base64 content, or absent."""
    lines = []
    for n, path in enumerate(paths):
        f = shlex.quote(layout.on_box(path))
        lines.append(
            f"if [ -f {f} ]; then echo \"== {n} present $(stat -c '%a %U:%G' {f})\"; "
            f"base64 -w0 {f}; echo; else echo '== {n} absent'; fi"
        )
    return layout.wrap(script(*lines))


def backup(layout: ConvergeLayout, rollout_id: int, paths: Sequence[str]) -> str:
    """Copy the files about to change (mode and owner kept); a no-op when the backup exists."""
    d = shlex.quote(layout.backup_dir(rollout_id))
    lines = [
        "umask 077",
        f"if [ -f {d}/manifest ]; then exit 0; fi",
        f"mkdir -p {shlex.quote(layout.state)}",
        f"rm -rf {d}.tmp",
        f"mkdir {d}.tmp",
    ]
    for n, path in enumerate(paths):
        f = shlex.quote(layout.on_box(path))
        entry = shlex.quote(path)
        lines.append(
            f"if [ -e {f} ]; then cp -p {f} {d}.tmp/{n}; echo {n} present {entry}; "
            f"else echo {n} absent {entry}; fi >> {d}.tmp/manifest"
        )
    lines += [f"touch {d}.tmp/manifest", f"mv -T {d}.tmp {d}"]
    return layout.wrap(script(*lines))


def read_manifest(layout: ConvergeLayout, rollout_id: int) -> str:
    """Print the backup manifest of `rollout_id` (nothing when this box has none)."""
    return layout.wrap(
        f"cat {shlex.quote(layout.backup_dir(rollout_id))}/manifest 2>/dev/null || true"
    )


def parse_manifest(text: str) -> list[tuple[str, bool]]:
    """(path, existed before) per manifest line."""
    entries = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in ("present", "absent"):
            entries.append((parts[2], parts[1] == "present"))
    return entries


def write_file(layout: ConvergeLayout, path: str, mode: int, owner: str) -> str:
    """Atomically replace `path` with stdin (temp file beside it, mode and owner, rename)."""
    target = layout.on_box(path)
    owned = owner if layout.owners else None
    directory = shlex.quote(posixpath.dirname(target))
    return layout.wrap(f"mkdir -p {directory} && {{ {atomic_write(target, mode, owned)}; }}")


def restore(layout: ConvergeLayout, rollout_id: int) -> str:
    """Put every backed-up file back (atomically) and remove the files that were added."""
    d = shlex.quote(layout.backup_dir(rollout_id))
    root = shlex.quote(layout.root)
    return layout.wrap(
        script(
            f"[ -f {d}/manifest ] || "
            f'{{ echo "no backup of rollout {int(rollout_id)}" >&2; exit 3; }}',
            f"root={root}",
            "while read -r n state path; do "
            'f="$root$path"; '
            f'if [ "$state" = present ]; then cp -p {d}/"$n" "$f.fatctl-restore"; '
            'mv -f "$f.fatctl-restore" "$f"; else rm -f "$f"; fi; '
            f"done < {d}/manifest",
        )
    )


def apply_actions(layout: ConvergeLayout, actions: Actions) -> str:
    """daemon-reload when units changed, then enables, restarts, reloads; `true` when nothing."""
    lines = [layout.daemon_reload] if actions.daemon_reload else []
    for unit in actions.enable:
        lines.append(layout.service.format(action="enable", unit=shlex.quote(unit)))
    for unit in actions.restart:
        lines.append(layout.service.format(action="restart", unit=shlex.quote(unit)))
    for unit in actions.reload:
        lines.append(layout.service.format(action="reload-or-restart", unit=shlex.quote(unit)))
    return layout.wrap(script(*lines) if lines else "true")


def prune_backups(layout: ConvergeLayout, keep: int) -> str:
    """Keep the newest `keep` rollout backups on the box."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    state = shlex.quote(layout.state)
    return layout.wrap(
        f"cd {state} 2>/dev/null || exit 0; ls -1t | grep -E '^[0-9]+$' | tail -n +{keep + 1} | "
        'while IFS= read -r d; do rm -rf -- "$d"; done'
    )
