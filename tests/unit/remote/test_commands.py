"""Command builders as strings, and the file-writing ones executed by a real local `sh`."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from fatctl.remote.commands import authorized_keys as ak
from fatctl.remote.commands.files import atomic_write, read_link, symlink_switch
from fatctl.remote.commands.services import daemon_reload, fat_health, systemctl
from fatctl.remote.commands.shell import maybe_sudo, run, script, sudo

ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
ED2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBWjg5eTXWlLk7gNoY8mpQ3fYW2KpNc6Eu8qKrCqTvBe"


def sh(command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", command], input=stdin, capture_output=True)


def test_run_quotes_every_argument():
    assert run(["echo", "a b", "$HOME", "it's"]) == "echo 'a b' '$HOME' 'it'\"'\"'s'"
    assert sh(run(["printf", "%s|", "a b", "$HOME", "`id`"])).stdout == b"a b|$HOME|`id`|"
    with pytest.raises(ValueError):
        run([])


def test_sudo_wraps_in_a_non_interactive_sh():
    assert sudo("echo hi; id") == "sudo -n -- sh -c 'echo hi; id'"
    assert sudo("true", user="openclaw") == "sudo -n -u openclaw -- sh -c true"
    assert maybe_sudo("true", needed=False) == "true"
    assert shlex.split(sudo("a 'b'"))[-1] == "a 'b'"


def test_script_stops_at_the_first_failure():
    res = sh(script("echo one", "false", "echo never"))
    assert res.returncode == 1 and res.stdout == b"one\n"


def test_atomic_write_content_only_on_stdin(tmp_path: Path):
    target = tmp_path / "dir with space" / "it's $(touch pwned).env"
    target.parent.mkdir()
    secret = b"TOKEN=abc123\n"
    command = atomic_write(str(target), mode=0o640)
    assert "abc123" not in command
    res = sh(command, secret)
    assert res.returncode == 0, res.stderr
    assert target.read_bytes() == secret
    assert target.stat().st_mode & 0o777 == 0o640
    assert os.listdir(target.parent) == [target.name]  # no temp file left, no injection
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path: Path):
    target = tmp_path / "f"
    target.write_text("old")
    res = sh(atomic_write(str(target), owner="no-such-user-xyz"), b"new")
    assert res.returncode != 0
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f"]


def test_atomic_write_refuses_relative_or_dir_paths():
    for bad in ("relative/path", "/etc/", "/a\nb"):
        with pytest.raises(ValueError):
            atomic_write(bad)


def test_symlink_switch_is_a_rename(tmp_path: Path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    link = tmp_path / "current"
    assert sh(symlink_switch(str(link), str(tmp_path / "v1"))).returncode == 0
    assert sh(symlink_switch(str(link), str(tmp_path / "v2"))).returncode == 0
    assert os.readlink(link) == str(tmp_path / "v2")
    assert sh(read_link(str(link))).stdout.decode().strip() == str(tmp_path / "v2")
    assert sorted(os.listdir(tmp_path)) == ["current", "v1", "v2"]
    assert "mv -Tf" in symlink_switch("/opt/openclaw/current", "/opt/openclaw/2026.9.6")


def test_systemctl_and_health():
    assert systemctl("restart", "openclaw-gateway.service") == (
        "systemctl restart --no-pager openclaw-gateway.service"
    )
    with pytest.raises(ValueError):
        systemctl("daemon-reexec", "x")
    with pytest.raises(ValueError):
        systemctl("restart", "--all")
    assert daemon_reload() == "systemctl daemon-reload"
    assert fat_health() == "fat-health --json"


def test_managed_block_validates_and_dedups():
    block = ak.managed_block([ED + " laptop", ED, ED2])
    assert block == f"{ak.BEGIN}\n{ED} laptop\n{ED2}\n{ak.END}\n"
    assert ak.managed_block([]) == f"{ak.BEGIN}\n{ak.END}\n"
    for bad in ("not a key", "ssh-ed25519 !!!", f"{ED}\n{ED2}"):
        with pytest.raises(ValueError):
            ak.managed_block([bad])


def test_merge_keeps_hand_added_lines_and_position():
    hand = "# mine\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@home\n"
    appended = ak.merge_managed_block(hand, [ED])
    assert appended == hand + f"{ak.BEGIN}\n{ED}\n{ak.END}\n"
    middle = f"first\n{ak.BEGIN}\nold-key-line\n{ak.END}\nlast\n"
    assert ak.merge_managed_block(middle, [ED2]) == f"first\n{ak.BEGIN}\n{ED2}\n{ak.END}\nlast\n"
    with_plain = f"{ED} installed-by-cloud-init\n{hand}"
    assert ak.merge_managed_block(with_plain, [ED2], drop=[ED]) == (
        hand + f"{ak.BEGIN}\n{ED2}\n{ak.END}\n"
    )


def test_rewrite_command_shape():
    command = ak.rewrite_authorized_keys("customer", drop=[ED])
    assert command.startswith("set -eu; getent passwd customer >/dev/null || { echo")
    assert "exec runuser -u customer -- sh -c" in command  # the user's own rights, never root's
    created = ak.rewrite_authorized_keys("customer", create=True)
    assert "|| useradd --create-home --shell /bin/bash" in created
    assert ED.split()[1] in command and 'mv -f "$tmp" "$f"; rm -f "$nb"' in command
    assert "ssh-ed25519 AAAA" not in command.replace(ED.split()[1], "")
    with pytest.raises(ValueError):
        ak.rewrite_authorized_keys("root; rm -rf /")


def test_unmask_after_keep_stopped_waits_for_a_running_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`move --abandon` on the old box: while a backup holds its lock (one whose fatctl was
    killed: when it ends it stops /data, and the gateway with it) nothing is unmasked; once the
    lock is free the gateway's runtime mask is lifted. A fake `systemctl` records the calls."""
    import fcntl

    from cloud_init import layout
    from fatctl.remote.commands import services

    lock, calls = tmp_path / "fat-backup.lock", tmp_path / "calls"
    monkeypatch.setattr(layout, "BACKUP_LOCK", str(lock))
    monkeypatch.setattr(services, "BACKUP_WAIT_S", 1)
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(calls))}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    command = services.unmask_after_keep_stopped()

    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = subprocess.run(["sh", "-c", command], env=env, capture_output=True)
    assert busy.returncode != 0 and not calls.exists()
    done = subprocess.run(["sh", "-c", command], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert calls.read_text() == "unmask --runtime openclaw-gateway.service\n"
