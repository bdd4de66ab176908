"""A tiny OpenClaw-shaped runtime on each real sshd test host, so fatctl's real commands run.

Each host's private /home gets `box/`: `opt/<version>/bin/openclaw` (versioned installs and the
`current` link, like /opt/openclaw), `bin/install` (copies a version from a shared artifact dir,
the host's "package mirror"), `bin/svc` (the supervisor: stops the pidfile's process and starts
`current/bin/openclaw` detached) and `bin/health` (fat-health's JSON shape: healthy only when the
started process is still alive). `events.log` records every real install and start, which is how
tests count upgrades per host. A `bad` version's gateway exits at once, so it must fail the gate.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

from fatctl.remote.commands.upgrade import BoxLayout
from tests.fixtures.sshd import SshHost

OLD, NEW, BAD = "2026.9.5", "2026.9.6", "2026.9.7-bad"

_GATEWAY = """#!/bin/sh
if [ "${{1:-}}" = "--version" ]; then echo {version}; exit 0; fi
{body}
"""

_INSTALL = """#!/bin/sh
set -eu
B={box}; v=$1
if [ -f "$B/opt/$v/.installed" ]; then exit 0; fi
if [ -f "$B/slow-install" ]; then sleep "$(cat "$B/slow-install")"; fi
[ -d {artifacts}/"$v" ] || {{ echo "no artifact for $v" >&2; exit 1; }}
rm -rf "$B/opt/$v"; cp -r {artifacts}/"$v" "$B/opt/$v"
echo "$v" > "$B/opt/$v/.installed"
echo "install $v" >> "$B/events.log"
"""

_SVC = """#!/bin/sh
set -u
B={box}
if [ -f "$B/gateway.pid" ]; then
  kill "$(cat "$B/gateway.pid")" 2>/dev/null; rm -f "$B/gateway.pid"
fi
v=$(basename "$(readlink "$B/opt/current")")
echo "start $v" >> "$B/events.log"
setsid "$B/opt/current/bin/openclaw" gateway run </dev/null >>"$B/gateway.log" 2>&1 &
echo $! > "$B/gateway.pid"
"""

_HEALTH = """#!/bin/sh
B={box}
v=$(basename "$(readlink "$B/opt/current" 2>/dev/null || echo none)")
pid=$(cat "$B/gateway.pid" 2>/dev/null || true)
state=$(awk '{{print $3}}' "/proc/$pid/stat" 2>/dev/null || true)
if [ -n "$pid" ] && [ -n "$state" ] && [ "$state" != Z ]; then
  echo '{{"healthy": true, "gateway": "active", "runtime_version": "'"$v"'", "problems": []}}'
  exit 0
fi
echo '{{"healthy": false, "gateway": "failed", "runtime_version": "'"$v"'",' \
  '"problems": ["gateway not running"]}}'
exit 1
"""


def _write(path: Path, text: str, owner: str, mode: int = 0o755) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    shutil.chown(path, owner, owner)


def make_artifacts(base: Path) -> Path:
    """The shared "mirror": one directory per version, readable by the operator."""
    art = base / "artifacts"
    for version, body in ((OLD, "exec sleep 100000"), (NEW, "exec sleep 100000"), (BAD, "exit 1")):
        gw = art / version / "bin" / "openclaw"
        gw.parent.mkdir(parents=True, exist_ok=True)
        gw.write_text(_GATEWAY.format(version=version, body=body))
        os.chmod(gw, 0o755)
    for d in (base, art, *art.rglob("*")):
        if d.is_dir():
            os.chmod(d, 0o755)
    return art


def box_dir(operator: str) -> str:
    """The box directory as the box (inside its mount namespace) sees it."""
    return f"/home/{operator}/box"


def layout(operator: str) -> BoxLayout:
    box = box_dir(operator)
    return BoxLayout(
        root=f"{box}/opt",
        install=f"{box}/bin/install {{version}}",
        restart=f"{box}/bin/svc",
        health=f"{box}/bin/health",
        sudo=False,
    )


def layout_env(operator: str) -> dict[str, str]:
    lay = layout(operator)
    return {
        "FATCTL_BOX_ROOT": lay.root,
        "FATCTL_BOX_INSTALL": lay.install,
        "FATCTL_BOX_RESTART": lay.restart,
        "FATCTL_BOX_HEALTH": lay.health,
        "FATCTL_BOX_SUDO": "0",
    }


def install_box(host: SshHost, artifacts: Path) -> Path:
    """Lay out the box in the host's /home, with OLD installed and `current` pointing at it."""
    op = host.identity.operator
    local = host.home(op) / "box"
    fill = {"box": box_dir(op), "artifacts": str(artifacts)}
    _write(local / "bin" / "install", _INSTALL.format(**fill), op)
    _write(local / "bin" / "svc", _SVC.format(**fill), op)
    _write(local / "bin" / "health", _HEALTH.format(**fill), op)
    shutil.copytree(artifacts / OLD, local / "opt" / OLD)
    (local / "opt" / OLD / ".installed").write_text(OLD + "\n")
    (local / "opt" / "current").symlink_to(OLD)
    chown_tree(local, op)
    return local


def chown_tree(root: Path, owner: str) -> None:
    import pwd

    entry = pwd.getpwnam(owner)
    for path in (root, *root.rglob("*")):
        os.lchown(path, entry.pw_uid, entry.pw_gid)


def events(host: SshHost) -> list[str]:
    log = host.home(host.identity.operator) / "box" / "events.log"
    return log.read_text().splitlines() if log.exists() else []


def current(host: SshHost) -> str:
    return os.readlink(host.home(host.identity.operator) / "box" / "opt" / "current")


def stop_gateway(host: SshHost) -> None:
    """Kill the host's detached gateway by its pidfile (only if it is our `sleep`)."""
    pidfile = host.home(host.identity.operator) / "box" / "gateway.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        if b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGTERM)
