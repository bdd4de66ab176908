"""`fatctl ssh` and `fatctl exec` against real sshd (issue 16): every run on a box is on the
audit trail with who, which agent, the command and its exit status (never stdin, never a
credential typed into the command line), and a fan-out that exits 1 says which agents failed
in one line on stderr."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pexpect

from fatctl.secrets import generate_master_key
from tests.fixtures.cli import fatctl_command, fatctl_env, run_fatctl
from tests.fixtures.sshd import pin_wrong_key


def fatctl(fleet: Any, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=fatctl_env(fleet.env), timeout=120, **kw)


def trail(fleet: Any, action: str) -> list[dict[str, Any]]:
    """The audit events of one action, oldest first, as `fatctl audit --json` shows them."""
    events = json.loads(fatctl(fleet, "audit", "--json", check=0).stdout)
    return [e for e in reversed(events) if e["action"] == action]


def test_exec_audits_every_agent_and_names_the_failed_ones(sshd_hosts, fleet_db):
    hosts = sshd_hosts(3)
    fleet = fleet_db(hosts)
    op = hosts[2].identity.operator
    (hosts[2].home(op) / "fail").touch()
    hosts[1].stop()
    line = "test -e ~/fail && exit 4; echo fine"
    res = fatctl(fleet, "exec", "--all", "--", line)
    assert res.returncode == 1
    assert res.stderr == "fatctl: error: 2 of 3 agents failed: box2, box3\n"
    events = {e["target"]: e for e in trail(fleet, "exec")}
    assert sorted(events) == ["box1", "box2", "box3"]
    assert {e["actor"] for e in events.values()} == {"test@ci"}
    assert [events[b]["result"] for b in ("box1", "box2", "box3")] == ["ok", "failed", "failed"]
    assert {e["detail"]["command"] for e in events.values()} == {line}
    assert [events[b]["detail"]["exit"] for b in ("box1", "box2", "box3")] == [0, None, 4]
    assert "connection refused" in events["box2"]["detail"]["error"]
    json_run = fatctl(fleet, "exec", "--agents", "box1,box2", "--json", "--", "true")
    assert json_run.returncode == 1
    assert json_run.stderr == "fatctl: error: 1 of 2 agents failed: box2\n"
    ok = fatctl(fleet, "exec", "--agents", "box1", "--", "true", check=0)
    assert ok.stderr == ""


def test_creds_rotate_names_the_failed_agents_and_audits_them(sshd_hosts, fleet_db):
    fleet = fleet_db(sshd_hosts(2))
    # No Cloudflare settings: issuing fails for every box, before anything reaches one.
    fleet.env["FATCTL_MASTER_KEY"] = generate_master_key()
    res = fatctl(fleet, "creds", "rotate", "--all")
    assert res.returncode == 1
    assert res.stderr == "fatctl: error: 2 of 2 agents failed: box1, box2\n"
    events = trail(fleet, "creds.rotate")
    assert sorted((e["target"], e["result"], e["actor"]) for e in events) == [
        ("box1", "failed", "test@ci"),
        ("box2", "failed", "test@ci"),
    ]


def test_exec_keeps_a_typed_credential_out_of_the_trail(sshd_hosts, fleet_db):
    fleet = fleet_db(sshd_hosts(1))
    fatctl(fleet, "exec", "--all", "--", "API_KEY=hunter2-not-kept true", check=0)
    (event,) = trail(fleet, "exec")
    assert event["detail"]["command"] == "API_KEY=*** true"
    assert "hunter2" not in fatctl(fleet, "audit", "--json", check=0).stdout


def test_ssh_command_is_audited_with_its_status_never_its_stdin(sshd_hosts, fleet_db):
    fleet = fleet_db(sshd_hosts(1))
    res = fatctl(fleet, "ssh", "box1", "--stdin", "--", "cat >/dev/null; exit 5",
                 input="stdin-secret-never-kept")  # fmt: skip
    assert res.returncode == 5
    fatctl(fleet, "ssh", "box1", "--", "printf", "%s", "a b", check=0)
    first, second = trail(fleet, "ssh")
    assert (first["target"], first["actor"], first["result"]) == ("box1", "test@ci", "failed")
    assert first["detail"] == {"command": "cat >/dev/null; exit 5", "exit": 5, "stdin": True}
    assert second["result"] == "ok"
    assert second["detail"] == {"command": "printf %s 'a b'", "exit": 0, "stdin": False}
    assert "stdin-secret" not in fatctl(fleet, "audit", "--json", check=0).stdout


def test_ssh_refused_for_its_host_key_is_audited(sshd_hosts, fleet_db):
    hosts = sshd_hosts(2)
    fleet = fleet_db(hosts)
    pin_wrong_key(fleet, "box1", hosts[1].host_key)
    assert fatctl(fleet, "ssh", "box1", "--", "true").returncode == 1
    (event,) = trail(fleet, "ssh")
    assert (event["target"], event["result"], event["detail"]["exit"]) == ("box1", "failed", None)
    assert event["detail"]["error"].startswith("host key mismatch for box1")


def test_an_interactive_shell_is_audited_with_its_exit_status(sshd_hosts, fleet_db):
    fleet = fleet_db(sshd_hosts(1))
    launcher, *argv = fatctl_command("ssh", "box1")
    child = pexpect.spawn(launcher, argv, env=fatctl_env(fleet.env, TERM="xterm"),
                          encoding="utf-8", timeout=20)  # fmt: skip
    try:
        child.expect(r"\$ ")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3, child.before
    (event,) = trail(fleet, "ssh")
    assert event["result"] == "failed"
    assert event["detail"] == {"shell": True, "exit": 3, "stdin": False}
