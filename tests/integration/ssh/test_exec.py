"""The runner against real sshd: exit codes, stderr, stdin, reuse, fan-out, refusal, timeouts."""

from __future__ import annotations

import re
import socket
import time

import pytest

from fatctl.errors import HostKeyMismatch, RemoteError
from fatctl.remote.fanout import fan_out
from fatctl.remote.runner import Pool, connect
from fatctl.remote.target import fingerprint


def test_exec_exit_code_stdout_stderr(sshd_hosts):
    (host,) = sshd_hosts(1)
    with Pool() as pool:
        conn = pool.get(host.target())
        res = conn.run("echo out; echo err >&2; whoami; exit 7")
        assert res.exit_code == 7
        assert res.stdout.split() == ["out", host.identity.operator]
        assert res.stderr == "err\n"
        assert not res.ok
        # Reuse: the second command goes over the same transport.
        assert pool.get(host.target()) is conn
        assert conn.run("true").ok


def test_stdin_is_fed_and_closed(sshd_hosts):
    (host,) = sshd_hosts(1)
    with Pool() as pool:
        res = pool.get(host.target()).run("wc -c; cat >/dev/null", stdin=b"x" * 100_000)
    assert res.stdout.strip() == "100000"


def test_streamed_lines_and_command_timeout(sshd_hosts):
    (host,) = sshd_hosts(1)
    lines: list[tuple[str, str]] = []
    with Pool() as pool:
        conn = pool.get(host.target())
        conn.run(
            "printf 'a\\nb\\n'; echo c >&2; printf tail",
            on_output=lambda s, line: lines.append((s, line)),
        )
        with pytest.raises(RemoteError, match=r"timed out after 0\.5s"):
            conn.run("sleep 5", timeout=0.5)
    assert ("out", "a") in lines and ("out", "b") in lines and ("err", "c") in lines
    assert ("out", "tail") in lines


def test_fan_out_twenty_hosts(sshd_hosts):
    hosts = sshd_hosts(20)
    seen: list[str] = []
    results = fan_out(
        [h.target() for h in hosts],
        lambda t: f"echo {t.name}; hostname -I >/dev/null 2>&1; exit {int(t.name[3:]) % 3}",
        parallel=8,
        on_line=lambda t, s, line: seen.append(f"{t.name}|{line}"),
    )
    assert [r.name for r in results] == [h.name for h in hosts]
    for host, res in zip(hosts, results, strict=True):
        assert res.error is None, res.error
        assert res.stdout.strip() == host.name
        assert res.exit_code == host.index % 3
    assert sorted(seen) == sorted(f"{h.name}|{h.name}" for h in hosts)


def test_different_host_key_is_refused_and_nothing_sent(sshd_hosts, tmp_path):
    good, evil = sshd_hosts(2)
    marker = evil.home(evil.identity.operator) / "marker"
    # The evil box is reached with good's pinned key: it presents its own, so it must be refused.
    target = evil.target(host_keys=(good.host_key,))
    with pytest.raises(HostKeyMismatch) as err:
        connect(target)
    msg = err.value.one_line()
    assert msg.startswith(f"host key mismatch for box{evil.index} (127.0.10.{evil.index})")
    assert fingerprint(good.host_key) in msg and fingerprint(evil.host_key) in msg
    results = fan_out([target], f"touch {marker}")
    assert results[0].error is not None and "host key mismatch" in results[0].error
    assert not marker.exists()
    time.sleep(0.3)  # let sshd flush its log of the closed connection
    log = evil.log_text()
    assert "Connection from 127.0.0.1" in log or "Connection from" in log
    assert "publickey" not in log and evil.identity.operator not in log


def test_no_pinned_key_is_refused(sshd_hosts):
    (host,) = sshd_hosts(1)
    with pytest.raises(HostKeyMismatch, match="no pinned host key"):
        connect(host.target(host_keys=()))


def test_unreachable_hosts_do_not_stall_others(sshd_hosts, figure):
    hosts = sshd_hosts(4)
    # A host that accepts TCP but never speaks SSH (a hung box), and a closed port.
    silent = socket.socket()
    silent.bind(("127.0.10.200", 0))
    silent.listen(5)
    try:
        hung = hosts[0].target(
            name="hung", host="127.0.10.200", port=silent.getsockname()[1], connect_timeout=2.0
        )
        closed = hosts[0].target(name="closed", host="127.0.10.201", connect_timeout=2.0)
        targets = [hung, closed] + [h.target(connect_timeout=2.0) for h in hosts]
        start = time.monotonic()
        results = fan_out(targets, "echo ok", parallel=6)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    by_name = {r.name: r for r in results}
    assert "no SSH banner" in (by_name["hung"].error or "") or "timed out" in (
        by_name["hung"].error or ""
    )
    assert "connection refused" in (by_name["closed"].error or "")
    for h in hosts:
        assert by_name[h.name].ok and by_name[h.name].stdout == "ok\n"
    figure("fan-out with a hung and a closed host (connect timeout 2s)", elapsed, "s")


def test_authentication_failure_is_one_line(sshd_hosts, tmp_path):
    from tests.fixtures.sshd import keygen

    (host,) = sshd_hosts(1)
    keygen(tmp_path / "stranger")
    with pytest.raises(RemoteError, match="authentication failed for"):
        connect(host.target(key_file=str(tmp_path / "stranger")))


def test_pinned_key_of_another_type_is_asked_for_and_checked(sshd_hosts):
    a, b = sshd_hosts(2)
    # Only the ECDSA key is pinned: the runner must ask the server for that type (it would
    # present ed25519 first otherwise) and accept it.
    with Pool() as pool:
        assert pool.get(a.target(host_keys=(a.ecdsa_key,))).run("true").ok
    with pytest.raises(HostKeyMismatch, match=re.escape(fingerprint(b.ecdsa_key))):
        connect(a.target(host_keys=(b.ecdsa_key,)))


def test_warm_connects_in_the_background_and_a_failed_warm_up_is_retried(sshd_hosts):
    import dataclasses

    live = [h.target() for h in sshd_hosts(2)]
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = dataclasses.replace(live[0], name="dead", port=probe.getsockname()[1])
    with Pool() as pool:
        pool.warm([*live, dead])
        deadline = time.monotonic() + 30
        while len(list(pool)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        warmed = list(pool)
        assert sorted(c.target.name for c in warmed) == sorted(t.name for t in live)
        # The first command finds its connection ready: the same transport, no new handshake.
        assert {id(pool.get(t)) for t in live} == {id(c) for c in warmed}
        assert pool.get(live[0]).run("true").ok
        # The dead host's failed warm-up was forgotten: its own attempt fails on its own terms.
        with pytest.raises(RemoteError, match="connection refused"):
            pool.get(dead)


def test_output_written_just_before_exit_is_never_lost(sshd_hosts):
    # sshd may send the exit status before it forwards the last output; the runner waits for
    # EOF, so a failing step's final stderr line (its reason) always arrives.
    (host,) = sshd_hosts(1)
    with Pool() as pool:
        conn = pool.get(host.target())
        results = [conn.run("echo reason >&2; printf out; exit 3") for _ in range(100)]
    assert [(r.exit_code, r.stdout, r.stderr) for r in results] == [(3, "out", "reason\n")] * 100
