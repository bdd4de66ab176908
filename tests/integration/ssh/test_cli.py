"""The SSH commands end to end: `fatctl exec`, `fatctl ssh`, `keys add/revoke`, a real terminal."""

from __future__ import annotations

import json
import subprocess

import pexpect
from sqlmodel import select

from fatctl.state.db import session_scope
from fatctl.state.models import HostKey
from tests.fixtures.cli import fatctl_command, fatctl_env, run_fatctl, start_fatctl
from tests.fixtures.sshd import keygen


def fatctl(fleet, *args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
    # The env is built per call: tests change fleet.env between commands.
    return run_fatctl(*args, env=fatctl_env(fleet.env), timeout=120, check=check)


def test_exec_fan_out_table_json_and_down_host(sshd_hosts, fleet_db):
    hosts = sshd_hosts(5)
    fleet = fleet_db(hosts)
    ok = fatctl(fleet, "exec", "--all", "--parallel", "3", "--", "echo hi from $(whoami)", check=0)
    for h in hosts:
        assert f"{h.name} | hi from {h.identity.operator}" in ok.stdout
    assert "agent" in ok.stdout and "duration" in ok.stdout  # the summary table
    hosts[1].stop()
    res = fatctl(fleet, "exec", "--agents", "box1,box2,box3", "--json", "--", "sh", "-c", "exit 5")
    assert res.returncode == 1
    rows = {r["agent"]: r for r in json.loads(res.stdout)}
    assert rows["box1"]["exit"] == 5 and rows["box3"]["exit"] == 5
    assert rows["box2"]["exit"] is None and "connection refused" in rows["box2"]["error"]
    by_label = fatctl(fleet, "exec", "--label", "location=nbg1", "--json", "--", "true")
    assert sorted(r["agent"] for r in json.loads(by_label.stdout)) == ["box2", "box4"]
    bad = fatctl(fleet, "exec", "--label", "color=red", "--", "true")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_ssh_one_command_exit_status_and_stderr(sshd_hosts, fleet_db):
    fleet = fleet_db(sshd_hosts(1))
    res = fatctl(fleet, "ssh", "box1", "--", "echo out; echo err >&2; exit 4")
    assert res.returncode == 4
    assert res.stdout == "out\n" and res.stderr == "err\n"
    argv = fatctl(fleet, "ssh", "box1", "--", "printf", "%s|", "a b", "$HOME")
    assert argv.stdout == "a b|$HOME|"  # several arguments are quoted as argv, not re-split
    piped = run_fatctl(
        "ssh", "box1", "--stdin", "--", "wc -c",
        env=fatctl_env(fleet.env), input="x" * 5000, timeout=60,
    )  # fmt: skip
    assert piped.returncode == 0 and piped.stdout.strip() == "5000"


def test_ssh_refuses_a_box_with_another_host_key(sshd_hosts, fleet_db):
    hosts = sshd_hosts(2)
    fleet = fleet_db(hosts)
    marker = hosts[0].home(hosts[0].identity.operator) / "marker"
    with session_scope(fleet.engine) as session:
        row = session.exec(select(HostKey).where(HostKey.agent_pk == 1)).one()
        row.public_key = hosts[1].host_key  # the database pins box2's key for box1
    res = fatctl(fleet, "ssh", "box1", "--", f"touch {marker}")
    assert res.returncode == 1
    assert res.stderr.startswith(
        "fatctl: error: host key mismatch for box1 (127.0.10.1): expected SHA256:"
    )
    assert not marker.exists()


def test_print_config_lets_plain_ssh_pin_the_same_key(sshd_hosts, fleet_db, tmp_path):
    hosts = sshd_hosts(2)
    fleet = fleet_db(hosts)
    cfg = fatctl(fleet, "ssh", "box1", "--print-config", check=0).stdout
    assert "StrictHostKeyChecking yes" in cfg and "HostKeyAlias fatctl-box1" in cfg
    assert f"#   fatctl-box1 {' '.join(hosts[0].host_key.split()[:2])}" in cfg
    (tmp_path / "ssh_config").write_text(cfg)
    base = ["ssh", "-F", str(tmp_path / "ssh_config"), "-o", "BatchMode=yes"]
    good = subprocess.run(
        [*base, "box1", "echo pinned-ok"], capture_output=True, text=True, timeout=30
    )
    assert good.returncode == 0 and good.stdout == "pinned-ok\n", good.stderr
    # Point the stanza at box2's address: plain ssh must refuse it, as fatctl does.
    evil = cfg.replace("HostName 127.0.10.1", "HostName 127.0.10.2")
    (tmp_path / "ssh_config").write_text(evil)
    bad = subprocess.run([*base, "box1", "true"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in bad.stderr


def test_keys_add_revoke_push_to_the_box(sshd_hosts, fleet_db, tmp_path):
    (host,) = sshd_hosts(1)
    fleet = fleet_db([host])
    pub = keygen(tmp_path / "cust", "laptop")
    (tmp_path / "cust.pub").write_text(pub + "\n")
    login = [
        "ssh",
        "-i",
        str(tmp_path / "cust"),
        "-p",
        str(host.port),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        f"UserKnownHostsFile={tmp_path / 'kh'}",
        f"{host.identity.customer}@{host.address}",
        "whoami",
    ]
    assert subprocess.run(login, capture_output=True, timeout=30).returncode == 255
    added = fatctl(
        fleet, "keys", "add", "--agent", "box1", "--file", str(tmp_path / "cust.pub"), check=0
    )
    assert "pushed customer keys to box1" in added.stdout
    ok = subprocess.run(login, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout.strip() == host.identity.customer
    fp = json.loads(fatctl(fleet, "keys", "list", "--agent", "box1", "--json", check=0).stdout)
    customer_fp = next(k["fingerprint"] for k in fp if k["role"] == "customer")
    fatctl(fleet, "keys", "revoke", customer_fp, "--agent", "box1", check=0)
    assert subprocess.run(login, capture_output=True, timeout=30).returncode == 255
    audit = fatctl(fleet, "audit", "--json", check=0).stdout
    assert "keys.push.customer" in audit


def test_interactive_shell_through_a_real_terminal(sshd_hosts, fleet_db):
    fleet = fleet_db(sshd_hosts(1))
    env = fatctl_env(fleet.env, TERM="xterm")
    launcher, *argv = fatctl_command("ssh", "box1")  # pexpect gives it a terminal, not pipes
    child = pexpect.spawn(
        launcher,
        argv,
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(24, 80),
    )
    try:
        child.expect(r"\$ ")  # bash's own prompt: the shell is reading input now
        # The prompt is computed, so the echo of this line cannot be mistaken for it.
        child.sendline("PS1='[$((40+2))]> '")
        prompt = r"\[42\]> "
        child.expect(prompt)
        child.sendline("echo $((6*7)) $(whoami)")
        child.expect(f"42 {fleet.hosts[0].identity.operator}")
        child.expect(prompt)
        child.sendline("stty size")
        child.expect(r"24 80\r\n")
        child.expect(prompt)
        child.setwinsize(40, 132)  # delivers SIGWINCH to fatctl, which resizes the remote PTY
        child.sendline("stty size")
        child.expect(r"40 132\r\n")
        child.expect(prompt)
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3, child.before


def test_rotate_operator_cli_reports_down_host_and_resumes(sshd_hosts, fleet_db, tmp_path):
    hosts = sshd_hosts(3)
    fleet = fleet_db(hosts)
    keygen(tmp_path / "next", "next-operator")
    hosts[0].stop()
    first = fatctl(fleet, "keys", "rotate-operator", "--new-key", str(tmp_path / "next"), "--json")
    assert first.returncode == 1
    rows = {r["agent"]: r for r in json.loads(first.stdout)}
    assert rows["box1"]["status"] == "failed" and "connection refused" in rows["box1"]["error"]
    assert rows["box2"]["status"] == rows["box3"]["status"] == "rotated"
    assert "run the same command again to resume" in first.stderr
    hosts[0].start()
    second = fatctl(fleet, "keys", "rotate-operator", "--new-key", str(tmp_path / "next"), check=0)
    assert "rotated" in second.stdout and "already" in second.stdout
    fleet.env["FATCTL_OPERATOR_KEY_FILE"] = str(tmp_path / "next")
    res = fatctl(fleet, "exec", "--all", "--json", "--", "true", check=0)
    assert [r["exit"] for r in json.loads(res.stdout)] == [0, 0, 0]


def test_bastion_from_settings_for_fatctl_and_plain_ssh(sshd_hosts, fleet_db, tmp_path):
    hosts = sshd_hosts(2)
    fleet = fleet_db(hosts)
    bastion = hosts[0]
    fleet.env["FATCTL_SSH_JUMP"] = f"{bastion.identity.operator}@{bastion.address}:{bastion.port}"
    fleet.env["FATCTL_SSH_JUMP_HOST_KEY"] = hosts[1].host_key  # wrong on purpose first
    refused = fatctl(fleet, "ssh", "box2", "--", "true")
    assert refused.returncode == 1
    assert "host key mismatch for bastion (127.0.10.1)" in refused.stderr
    fleet.env["FATCTL_SSH_JUMP_HOST_KEY"] = bastion.host_key
    ok = fatctl(fleet, "ssh", "box2", "--", "echo through-bastion", check=0)
    assert ok.stdout == "through-bastion\n"
    cfg = fatctl(fleet, "ssh", "box2", "--print-config", check=0).stdout
    assert "ProxyJump bastion" in cfg and "HostKeyAlias fatctl-bastion" in cfg
    (tmp_path / "cfg").write_text(cfg)
    plain = subprocess.run(
        ["ssh", "-F", str(tmp_path / "cfg"), "-o", "BatchMode=yes", "box2", "echo plain"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert plain.returncode == 0 and plain.stdout == "plain\n", plain.stderr
    fleet.env["FATCTL_SSH_JUMP"] = "no-at-sign"
    bad = fatctl(fleet, "ssh", "box2", "--", "true")
    assert bad.returncode == 2 and "ssh_jump must look like user@host[:port]" in bad.stderr


def test_ctrl_c_during_exec_ends_promptly(sshd_hosts, fleet_db, figure):
    import signal
    import time

    fleet = fleet_db(sshd_hosts(3))
    proc = start_fatctl(
        "exec", "--all", "--", "echo started; sleep 60",
        env=fatctl_env(fleet.env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for _ in range(3):
            assert "started" in proc.stdout.readline()
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # the remote sleeps would take 60 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    figure("exec stopped after SIGINT", time.monotonic() - start, "s")
    # typer turns KeyboardInterrupt into Exit(130) itself, so there is no message line.
    assert proc.returncode == 130, err


def test_keys_push_and_creds_rotate_dry_runs_change_nothing(sshd_hosts, fleet_db, tmp_path):
    (host,) = sshd_hosts(1)
    fleet = fleet_db([host])
    pub = keygen(tmp_path / "cust", "laptop")
    (tmp_path / "cust.pub").write_text(pub + "\n")
    fatctl(fleet, "keys", "add", "--agent", "box1", "--no-push", "--file",
           str(tmp_path / "cust.pub"), check=0)  # fmt: skip
    trail = fatctl(fleet, "audit", "--json", check=0).stdout
    shown = fatctl(fleet, "keys", "push", "--agent", "box1", "--dry-run", check=0).stdout
    assert f"+{pub}" in shown and "+# BEGIN fatctl managed" in shown
    planned = json.loads(
        fatctl(fleet, "keys", "push", "--agent", "box1", "--dry-run", "--json", check=0).stdout
    )
    assert planned["changed"] is True and pub not in planned["current"]
    fatctl(fleet, "keys", "push", "--agent", "box1", check=0)
    again = fatctl(fleet, "keys", "push", "--agent", "box1", "--dry-run", check=0).stdout
    assert "already as wanted" in again

    rotations = json.loads(
        fatctl(fleet, "creds", "rotate", "--all", "--dry-run", "--json", check=0).stdout
    )
    assert [(r["agent"], r["action"]) for r in rotations] == [("box1", "would rotate")]
    after = json.loads(fatctl(fleet, "audit", "--json", check=0).stdout)
    assert not [e for e in after if e["action"] == "creds.rotate"]
    assert len(after) == len(json.loads(trail)) + 1  # the one real push, nothing else
