"""The converge builders: checked as strings, and run for real by `sh` on a temporary tree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cloud_init.files import RenderedFile
from fatctl.remote.commands import converge as cmd
from fatctl.services.converge import diff


def sh(command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, text=True)


@pytest.fixture
def layout(tmp_path: Path) -> cmd.ConvergeLayout:
    return cmd.ConvergeLayout(
        root=str(tmp_path / "fs"), state=str(tmp_path / "state"), owners=False, sudo=False
    )


def put(layout: cmd.ConvergeLayout, path: str, text: str, mode: int = 0o644) -> Path:
    local = Path(layout.on_box(path))
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text)
    local.chmod(mode)
    return local


def test_only_affected_services_are_touched() -> None:
    assert cmd.actions_for(["/etc/caddy/Caddyfile"]) == cmd.Actions(False, (), ("caddy.service",))
    gateway = cmd.actions_for(["/etc/systemd/system/openclaw-gateway.service"])
    assert gateway == cmd.Actions(True, ("openclaw-gateway.service",), ())
    both = cmd.actions_for(["/etc/rclone/rclone.conf", "/etc/openclaw/openclaw.json"])
    assert both.restart == ("rclone-data.service", "openclaw-gateway.service")
    assert cmd.actions_for(["/opt/fat-skills/outbox-email/SKILL.md"]).restart == (
        "openclaw-gateway.service",
    )
    assert cmd.actions_for(["/usr/local/bin/fat-health"]).empty
    # sshd is restarted (returns once it listens), never reloaded (re-execs, refuses for a moment).
    hardening = cmd.actions_for(["/etc/ssh/sshd_config.d/50-fat.conf", "/etc/rclone/rclone.conf"])
    assert hardening.restart[:2] == ("ssh.service", "rclone-data.service")
    assert "ssh.service" not in hardening.reload
    assert cmd.actions_for(["/etc/systemd/system/fat-swap.service"]) == cmd.Actions(True)


def test_production_commands_use_sudo_and_systemctl() -> None:
    prod = cmd.ConvergeLayout()
    actions = cmd.actions_for(["/etc/caddy/Caddyfile", "/etc/openclaw/openclaw.json"])
    text = cmd.apply_actions(prod, actions)
    assert text.startswith("sudo -n -- sh -c ")
    assert "systemctl restart --no-pager openclaw-gateway.service" in text
    assert "systemctl reload-or-restart --no-pager caddy.service" in text
    assert "daemon-reload" not in text
    write = cmd.write_file(prod, "/etc/caddy/Caddyfile", 0o644, "root:root")
    assert "chown root:root" in write and "chmod 0644" in write
    with pytest.raises(ValueError):
        prod.on_box("../etc/passwd")
    with pytest.raises(ValueError):
        prod.on_box("/etc/../shadow")


def test_read_then_parse_reports_content_mode_and_absence(layout: cmd.ConvergeLayout) -> None:
    put(layout, "/etc/a.conf", "alpha\n", 0o640)
    put(layout, "/etc/empty", "")
    paths = ["/etc/a.conf", "/etc/missing", "/etc/empty"]
    done = sh(cmd.read_files(layout, paths))
    assert done.returncode == 0, done.stderr
    box = diff.parse_read(paths, done.stdout)
    assert box["/etc/missing"] is None
    a = box["/etc/a.conf"]
    assert a is not None and (a.content, a.mode) == (b"alpha\n", 0o640)
    assert box["/etc/empty"] == diff.BoxFile(b"", 0o644, a.owner)
    with pytest.raises(ValueError, match="did not report"):
        diff.parse_read([*paths, "/etc/more"], done.stdout)


def test_backup_write_restore_round_trip(layout: cmd.ConvergeLayout, tmp_path: Path) -> None:
    old = put(layout, "/etc/caddy/Caddyfile", "old\n", 0o640)
    paths = ["/etc/caddy/Caddyfile", "/opt/skills/new/SKILL.md"]
    assert sh(cmd.backup(layout, 7, paths)).returncode == 0
    for path, text in zip(paths, ("new\n", "skill\n"), strict=True):
        done = sh(cmd.write_file(layout, path, 0o644, "root:root"), stdin=text)
        assert done.returncode == 0, done.stderr
    assert old.read_text() == "new\n" and oct(old.stat().st_mode & 0o777) == "0o644"
    added = Path(layout.on_box(paths[1]))
    assert added.read_text() == "skill\n"
    # A second backup of the same rollout (a resumed step) must keep the pre-change copy.
    assert sh(cmd.backup(layout, 7, paths)).returncode == 0
    manifest = sh(cmd.read_manifest(layout, 7)).stdout
    assert cmd.parse_manifest(manifest) == [(paths[0], True), (paths[1], False)]

    done = sh(cmd.restore(layout, 7))
    assert done.returncode == 0, done.stderr
    assert old.read_text() == "old\n" and oct(old.stat().st_mode & 0o777) == "0o640"
    assert not added.exists()
    assert not list(old.parent.glob(".fatctl.*")) and not list(old.parent.glob("*restore*"))
    missing = sh(cmd.restore(layout, 8))
    assert missing.returncode == 3 and "no backup of rollout 8" in missing.stderr
    assert sh(cmd.read_manifest(layout, 8)).stdout == ""


def test_prune_keeps_the_newest_backups(layout: cmd.ConvergeLayout) -> None:
    for n in range(1, 5):
        assert sh(cmd.backup(layout, n, ["/etc/x"])).returncode == 0
        os.utime(Path(layout.backup_dir(n)), (1000.0 * n, 1000.0 * n))
    assert sh(cmd.prune_backups(layout, 2)).returncode == 0
    assert sorted(p.name for p in Path(layout.state).iterdir()) == ["3", "4"]
    with pytest.raises(ValueError):
        cmd.prune_backups(layout, 0)


def test_apply_actions_runs_in_order(layout: cmd.ConvergeLayout, tmp_path: Path) -> None:
    log = tmp_path / "log"
    lay = cmd.ConvergeLayout(
        daemon_reload=f"echo reload >> {log}",
        service=f"echo {{action}} {{unit}} >> {log}",
        sudo=False,
    )
    paths = ["/etc/caddy/Caddyfile", "/etc/systemd/system/openclaw-gateway.service"]
    assert sh(cmd.apply_actions(lay, cmd.actions_for(paths))).returncode == 0
    assert log.read_text().splitlines() == [
        "reload",
        "restart openclaw-gateway.service",
        "reload-or-restart caddy.service",
    ]
    assert cmd.apply_actions(lay, cmd.Actions()) == "true"


def test_changes_diff_and_never_show_secrets() -> None:
    want = {
        "/etc/caddy/Caddyfile": RenderedFile("/etc/caddy/Caddyfile", "a.example {\n}\n"),
        "/etc/new": RenderedFile("/etc/new", "password = hunter2-long\n"),
        "/usr/local/bin/x": RenderedFile("/usr/local/bin/x", "#!/bin/sh\n", 0o755),
        "/etc/same": RenderedFile("/etc/same", "same\n"),
    }
    have = {
        "/etc/caddy/Caddyfile": diff.BoxFile(b"b.example {\n}\n", 0o644, "root:root"),
        "/etc/new": None,
        "/usr/local/bin/x": diff.BoxFile(b"#!/bin/sh\n", 0o644, "root:root"),
        "/etc/same": diff.BoxFile(b"same\n", 0o644, "root:root"),
    }
    found = {c.path: c for c in diff.changes(want, have, owners=True)}
    assert sorted(found) == ["/etc/caddy/Caddyfile", "/etc/new", "/usr/local/bin/x"]
    assert "-b.example {" in found["/etc/caddy/Caddyfile"].diff
    assert "+a.example {" in found["/etc/caddy/Caddyfile"].diff
    assert found["/etc/new"].kind == "added" and "hunter2" not in found["/etc/new"].diff
    assert (
        found["/usr/local/bin/x"].kind == "mode"
        and "0644 -> 0755" in found["/usr/local/bin/x"].diff
    )
    secret = {"/etc/openclaw/gateway.env": RenderedFile("/etc/openclaw/gateway.env", "T=1\n")}
    assert diff.desired_files({**want, **secret}).keys() == want.keys()


def test_digest_follows_content_mode_and_owner() -> None:
    one = {"/a": RenderedFile("/a", "x\n")}
    assert diff.digest(one) == diff.digest(dict(one))
    assert diff.digest(one) != diff.digest({"/a": RenderedFile("/a", "y\n")})
    assert diff.digest(one) != diff.digest({"/a": RenderedFile("/a", "x\n", 0o600)})
    box = {"/a": diff.BoxFile(b"x\n", 0o644, "root:root"), "/b": None}
    assert diff.box_digest(box) == diff.digest(one)


def test_the_backup_timer_is_enabled_and_armed_when_its_file_arrives() -> None:
    """fat-backup.timer comes after boot (files.AFTER_BOOT): nothing but converge/sync enables
    it, so writing it must leave it enabled (`systemctl enable`) and running (restart re-arms a
    changed schedule); the script or the service file alone start nothing."""
    actions = cmd.actions_for(
        ["/etc/systemd/system/fat-backup.timer", "/usr/local/sbin/fat-backup"]
    )
    assert actions == cmd.Actions(True, ("fat-backup.timer",), (), ("fat-backup.timer",))
    text = cmd.apply_actions(cmd.ConvergeLayout(), actions)
    assert text.index("systemctl enable --no-pager fat-backup.timer") < text.index(
        "systemctl restart --no-pager fat-backup.timer"
    )
    assert cmd.actions_for(["/etc/systemd/system/fat-backup.service"]) == cmd.Actions(True)
