"""Optional bastion (direct-tcpip through a jump host) and ssh-agent authentication."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import time

import pytest

from fatctl.errors import HostKeyMismatch
from fatctl.remote.runner import Pool


def _owner_of_connection_to(address: str, port: int) -> str:
    """Which process holds the TCP connection to address:port (from `ss -tnp`)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", "dst", f"{address}:{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = re.findall(r'users:\(\("([^"]+)"', out)
    assert names, out
    return names[0]


def test_command_through_a_jump_host(sshd_hosts):
    jump, box = sshd_hosts(2)
    target = box.target(jump=jump.target())
    with Pool() as pool:
        res = pool.get(target).run("echo via-jump")
        assert res.ok and res.stdout == "via-jump\n"
        assert len(list(pool)) == 2  # the jump connection is pooled and reused
        # The TCP connection to the box belongs to the jump's sshd, not to this process.
        assert _owner_of_connection_to(box.address, box.port) == "sshd"
        assert _owner_of_connection_to(jump.address, jump.port) != "sshd"  # this test process


def test_jump_host_key_is_pinned_too(sshd_hosts):
    jump, box = sshd_hosts(2)
    target = box.target(jump=jump.target(host_keys=(box.host_key,)))
    with Pool() as pool, pytest.raises(HostKeyMismatch, match="host key mismatch for box1"):
        pool.get(target)


@pytest.fixture
def ssh_agent(tmp_path):
    """A real ssh-agent on a temp socket, stopped by pid."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        yield str(sock)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_agent_authentication(sshd_hosts, ssh_agent, monkeypatch):
    (host,) = sshd_hosts(1)
    env = {**os.environ, "SSH_AUTH_SOCK": ssh_agent}
    subprocess.run(["ssh-add", "-q", host.identity.key_file], env=env, check=True)
    monkeypatch.setenv("SSH_AUTH_SOCK", ssh_agent)
    target = dataclasses.replace(host.target(), key_file=None, use_agent=True)
    with Pool() as pool:
        assert pool.get(target).run("whoami").stdout.strip() == host.identity.operator


def test_no_key_and_no_agent_is_one_line(sshd_hosts, monkeypatch):
    from fatctl.errors import RemoteError

    (host,) = sshd_hosts(1)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    target = dataclasses.replace(host.target(), key_file=None, use_agent=True)
    with Pool() as pool, pytest.raises(RemoteError, match="no SSH key for box1"):
        pool.get(target)
