"""A tiny OpenClaw-shaped runtime on each real sshd test host, so fatctl's real commands run.

Each host's private /home gets `box/`: `opt/<version>/bin/openclaw` (versioned installs and the
`current` link, like /opt/openclaw), `bin/install` (copies a version from a shared artifact dir,
the host's "package mirror"), `bin/svc` (the supervisor: stops the pidfile's process and starts
`current/bin/openclaw` detached) and `bin/health` (fat-health's JSON shape: healthy only when the
started process is still alive). `events.log` records every real install and start, which is how
tests count upgrades per host. A `bad` version's gateway exits at once, so it must fail the gate.

For converge, `box/fs/` stands for the box's `/`: it holds the agent's rendered files, the
gateway is started with OPENCLAW_CONFIG_PATH pointing into it and (like OpenClaw's strict config
validation) exits when that file is not valid JSON with an integer `gateway.port`; `bin/unit`
and `bin/daemon-reload` stand for systemctl, logging each call to `events.log` (a gateway
restart runs `bin/svc`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cloud_init.files import RenderedFile
from fatctl.remote.commands.converge import ConvergeLayout
from fatctl.remote.commands.upgrade import BoxLayout
from tests.fixtures.cli import fatctl_env, start_fatctl
from tests.fixtures.sshd import SshHost

OLD, NEW, BAD = "2026.9.5", "2026.9.6", "2026.9.7-bad"

_GATEWAY = """#!/bin/sh
if [ "${{1:-}}" = "--version" ]; then echo {version}; exit 0; fi
c=${{OPENCLAW_CONFIG_PATH:-}}
if [ -n "$c" ] && [ -f "$c" ]; then
  python3 -c 'import json, sys
port = json.load(open(sys.argv[1]))["gateway"]["port"]
sys.exit(0 if isinstance(port, int) else 1)' "$c" || {{ echo "invalid config $c" >&2; exit 78; }}
fi
{body}
"""

_UNIT = """#!/bin/sh
set -eu
echo "$1 $2" >> {box}/events.log
if [ "$2" = openclaw-gateway.service ]; then exec {box}/bin/svc; fi
"""

_DAEMON_RELOAD = """#!/bin/sh
echo daemon-reload >> {box}/events.log
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
OPENCLAW_CONFIG_PATH="$B/fs/etc/openclaw/openclaw.json" \
  setsid "$B/opt/current/bin/openclaw" gateway run </dev/null >>"$B/gateway.log" 2>&1 &
echo $! > "$B/gateway.pid"
date +%s > "$B/gateway.started"
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
        started=f"cat {box}/gateway.started",
        sudo=False,
        lock=f"{box}/rollout.lock",
    )


def layout_env(operator: str) -> dict[str, str]:
    lay = layout(operator)
    return {
        "FATCTL_BOX_ROOT": lay.root,
        "FATCTL_BOX_INSTALL": lay.install,
        "FATCTL_BOX_RESTART": lay.restart,
        "FATCTL_BOX_HEALTH": lay.health,
        "FATCTL_BOX_STARTED": lay.started,
        "FATCTL_BOX_LOCK": lay.lock,
        "FATCTL_BOX_SUDO": "0",
    }


def files_layout(operator: str) -> ConvergeLayout:
    box = box_dir(operator)
    return ConvergeLayout(
        root=f"{box}/fs",
        state=f"{box}/converge",
        daemon_reload=f"{box}/bin/daemon-reload",
        service=f"{box}/bin/unit {{action}} {{unit}}",
        owners=False,
        sudo=False,
    )


def files_env(operator: str) -> dict[str, str]:
    lay = files_layout(operator)
    return {
        "FATCTL_BOX_FS_ROOT": lay.root,
        "FATCTL_BOX_CONVERGE_STATE": lay.state,
        "FATCTL_BOX_DAEMON_RELOAD": lay.daemon_reload,
        "FATCTL_BOX_SERVICE": lay.service,
        "FATCTL_BOX_OWNERS": "0",
    }


def seed_files(host: SshHost, files: dict[str, RenderedFile]) -> None:
    """What provisioning left on the box: the rendered files, in the host's `box/fs`."""
    op = host.identity.operator
    fs = host.home(op) / "box" / "fs"
    for path, f in files.items():
        local = fs / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(f.content)
        os.chmod(local, f.mode)
    chown_tree(fs, op)


def box_file(host: SshHost, path: str) -> str:
    return (host.home(host.identity.operator) / "box" / "fs" / path.lstrip("/")).read_text()


def install_box(host: SshHost, artifacts: Path) -> Path:
    """Lay out the box in the host's /home, with OLD installed and `current` pointing at it."""
    op = host.identity.operator
    local = host.home(op) / "box"
    fill = {"box": box_dir(op), "artifacts": str(artifacts)}
    _write(local / "bin" / "install", _INSTALL.format(**fill), op)
    _write(local / "bin" / "svc", _SVC.format(**fill), op)
    _write(local / "bin" / "health", _HEALTH.format(**fill), op)
    _write(local / "bin" / "unit", _UNIT.format(**fill), op)
    _write(local / "bin" / "daemon-reload", _DAEMON_RELOAD.format(**fill), op)
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


def run_until_killed(args: list[str], env: dict[str, str], until: Callable[[], bool]) -> int:
    """Start `fatctl ARGS`, SIGKILL it once `until()` holds (or after 60 s); its return code."""
    proc = start_fatctl(
        *args, env=fatctl_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not until() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode
