"""fatctl run as CI runs it: no terminal, stdin at EOF, CI=true. Every command of the real click
tree (fatctl.cli.commands.build_app(None)) is started as a real process with minimal but
valid-looking arguments; none may wait for input or hang, each completes or fails with exactly
one `fatctl: error:` line (no traceback, no internal error), nothing asks a question, and no
output holds an escape sequence (colour, cursor movement, progress redraws).

The control plane it talks to is deliberately unreachable (Hetzner, Cloudflare and SSH on closed
loopback ports) so that commands reach their network step and must fail there cleanly; the
state database is real (migrated SQLite with one agent). Sandbox commands run API-only, and
what `sandbox up` starts is stopped by `sandbox down` (by pid) in the fixture's teardown.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import fatctl_env, run_fatctl

TIMEOUT_S = 120.0  # generous: a shared 2-core machine; a hang is far longer than this
ESC = "\x1b"
PROMPTS = ("[y/N]", "[Y/n]", "Password:", "passphrase")
# Values for required parameters, by parameter name.
ARGUMENTS: dict[str, list[str]] = {
    "agent": ["alpha"],
    "name": ["alpha"],
    "server_type": ["cx33"],
    "owner": ["owner@example.com"],
    "command": ["true"],
    "version": ["2026.9.6"],
    "to": ["2026.9.6"],
    "fingerprint": ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    "rollout_id": ["1"],
}
EXTRA: dict[tuple[str, ...], list[str]] = {
    ("sandbox", "up"): ["--no-boxes"]
}  # API-only: boxes need root, nspawn and minutes
SEQUENTIAL = (("sandbox", "up"), ("sandbox", "status"), ("sandbox", "down"))
# Commands that serve until stopped: run unattended they must come up (`serve` listens on its
# port, `worker` beats in the state database) and stop cleanly (exit 0, no traceback) on
# SIGTERM, which is how a service manager or CI ends them.
DAEMONS = (("serve",), ("worker",))
DAEMON_UP_S = 60.0


@dataclass(frozen=True)
class Ran:
    argv: tuple[str, ...]
    code: int | None  # None: timed out
    out: str
    err: str


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def leaf_commands() -> list[tuple[tuple[str, ...], Any]]:
    import click
    import typer

    from fatctl.cli.commands import build_app

    root = typer.main.get_command(build_app(None))
    out: list[tuple[tuple[str, ...], Any]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, (*path, name))
        else:
            out.append((path, cmd))

    walk(root, ())
    return out


def minimal_args(path: tuple[str, ...], cmd: Any, pub_key: Path) -> list[str]:
    import click

    args: list[str] = []
    for param in cmd.params:
        if not param.required:
            continue
        if isinstance(param.type, click.Path) or param.name == "new_key":
            value = [str(pub_key)]
        else:
            value = ARGUMENTS.get(str(param.name), ["x"])
        if isinstance(param, click.Option):
            args += [param.opts[0], value[0]]
        else:
            args += value
    return [*path, *args, *EXTRA.get(path, [])]


def _seed(url: str) -> None:
    """One ready agent with a pinned host key, so commands get past "no agent named"."""
    from fatctl.state.db import make_engine, session_scope
    from fatctl.state.migrate import upgrade
    from fatctl.state.models import Agent, HostKey, Owner

    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        owner = Owner(email="owner@example.com", plan="managed")
        session.add(owner)
        session.flush()
        assert owner.id is not None
        agent = Agent(name="alpha", agent_id="id0001", owner_id=owner.id, state="ready",
                      server_type="cx23", location="fsn1", image="debian-12",
                      runtime_version="2026.9.6", engine="hcloud", ipv4="127.0.0.1",
                      server_id="1")  # fmt: skip
        session.add(agent)
        session.flush()
        assert agent.id is not None
        host_key = (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv0Sx8gYbKk5bW1F3i5ZkHkq8t3m1n2b3c4d5e6f7g8"
        )
        session.add(HostKey(agent_pk=agent.id, key_type="ssh-ed25519", public_key=host_key,
                            fingerprint="SHA256:test"))  # fmt: skip
    engine.dispose()


def _operator_key(directory: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = directory / "operator"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))  # fmt: skip
    private.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    pub = directory / "operator.pub"
    pub.write_text(public.decode() + " ci@example\n")
    return pub


@pytest.fixture
def ci_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    from fatctl.secrets import generate_master_key

    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    _seed(url)
    pub = _operator_key(tmp_path)
    dead = f"http://127.0.0.1:{closed_port()}"
    env = fatctl_env(
        # Colour and Pulumi settings from the shell stay out too: plain must come from CI.
        drop=("PULUMI", "NO_COLOR", "FORCE_COLOR", "CLICOLOR"),
        TERM="xterm-256color",  # tempting colour: it must still not appear without a terminal
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        FATCTL_DATA_DIR=str(tmp_path / "data"),
        FATCTL_DATABASE_URL=url,
        FATCTL_MASTER_KEY=generate_master_key(),
        FATCTL_DOMAIN="agents.example.net",
        FATCTL_ENGINE="hcloud",
        FATCTL_API_RETRIES="1",
        FATCTL_POLL_INTERVAL="0.01",
        FATCTL_SSH_PORT=str(closed_port()),
        FATCTL_OPERATOR_KEY_FILE=str(pub.with_suffix("")),
        FATCTL_ACTOR="ci@pipeline",
        HCLOUD_TOKEN="ci-token-not-valid-anywhere",
        HCLOUD_ENDPOINT=f"{dead}/v1",
        CLOUDFLARE_API_TOKEN="ci-token-not-valid-anywhere",
        CLOUDFLARE_BASE_URL=f"{dead}/client/v4",
        CLOUDFLARE_ACCOUNT_ID="0" * 32,
        FATCTL_PUB_KEY=str(pub),  # read by the test only
    )
    yield env
    # Whatever `sandbox up` started is stopped by pid by `sandbox down`, even if a test failed.
    run(env, ("sandbox", "down"), cwd=tmp_path)


def run(env: dict[str, str], argv: tuple[str, ...], cwd: Path) -> Ran:
    if argv[:1] in DAEMONS:
        return run_daemon(env, argv, cwd)
    try:
        proc = run_fatctl(*argv, env=env, cwd=cwd, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:  # run() kills the child before raising
        return Ran(argv, None, str(exc.stdout or ""), str(exc.stderr or ""))
    return Ran(argv, proc.returncode, proc.stdout, proc.stderr)


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _beats(url: str, pid: int) -> bool:
    """Whether the process `pid` has registered in worker_heartbeats."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT 1 FROM worker_heartbeats WHERE pid = :pid"),
                                 {"pid": pid}).first()  # fmt: skip
        return found is not None
    finally:
        engine.dispose()


def run_daemon(env: dict[str, str], argv: tuple[str, ...], cwd: Path) -> Ran:
    """Start a serving command, wait until it is up (or exits), SIGTERM it."""
    import signal
    import time

    from tests.fixtures.cli import fatctl_command

    port = closed_port()
    extra = ("--port", str(port)) if argv[:1] == ("serve",) else ()
    proc = subprocess.Popen(fatctl_command(*argv, *extra), env=dict(env), cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + DAEMON_UP_S
        while proc.poll() is None and time.monotonic() < deadline:
            if _listens(port) if extra else _beats(env["FATCTL_DATABASE_URL"], proc.pid):
                break
            time.sleep(0.2)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT_S)
        return Ran(argv, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        return Ran(argv, None, "", "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def problems(ran: Ran) -> list[str]:
    """What is wrong with one unattended run (empty when it behaved)."""
    found = []
    if ran.code is None:
        return [f"no exit within {TIMEOUT_S:g}s (waiting for input?)"]
    if ESC in ran.out or ESC in ran.err:
        found.append("escape sequence in output")
    if any(p in ran.out or p in ran.err for p in PROMPTS):
        found.append("asked a question")
    lines = [line for line in ran.err.splitlines() if line.strip()]
    if "Traceback" in ran.err or "internal error" in ran.err:
        found.append(f"crashed: {lines[-1:]}")
    elif ran.code != 0:
        errors = [line for line in lines if line.startswith("fatctl: error: ")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            found.append(f"exit {ran.code} without one closing error line: {lines[-3:]}")
    return found


def json_problems(ran: Ran) -> list[str]:
    """stdout of a `--json` run: one JSON document, or JSON lines whose events carry `ts`."""
    import json

    if ran.code != 0:
        return []
    text = ran.out.strip()
    try:
        json.loads(text)
        return []
    except ValueError:
        pass
    found = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            return [f"not JSON on stdout: {line[:80]!r}"]
        if isinstance(item, dict) and "event" in item and "ts" not in item:
            found.append(f"event without ts: {line[:80]}")
    return found


def test_every_command_runs_unattended(ci_env: dict[str, str], tmp_path: Path, figure: Any) -> None:
    pub = Path(ci_env["FATCTL_PUB_KEY"])
    leaves = leaf_commands()
    commands = [minimal_args(path, cmd, pub) for path, cmd in leaves]
    with_json = {path for path, cmd in leaves if any("--json" in p.opts for p in cmd.params)}
    assert len(commands) > 40, "the command tree was not walked"
    parallel = [tuple(c) for c in commands if tuple(c[:2]) not in SEQUENTIAL]
    ordered = [tuple(c) for s in SEQUENTIAL for c in commands if tuple(c[:2]) == s]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda argv: run(ci_env, argv, tmp_path), parallel))
    results += [run(ci_env, argv, tmp_path) for argv in ordered]
    bad = {" ".join(r.argv): p for r in results if (p := problems(r))}
    assert not bad, bad
    # A service must come up and stop cleanly: one that failed to start is no pass here.
    daemons = {" ".join(r.argv): r.code for r in results if r.argv[:1] in DAEMONS}
    assert daemons == {" ".join(d): 0 for d in DAEMONS}, daemons
    # What completed must also complete with --json, and print nothing but JSON on stdout.
    again = [(*r.argv, "--json") for r in results
             if r.code == 0 and tuple(r.argv[:2]) not in SEQUENTIAL
             and any(tuple(r.argv[: len(p)]) == p for p in with_json)]  # fmt: skip
    with ThreadPoolExecutor(max_workers=4) as pool:
        as_json = list(pool.map(lambda argv: run(ci_env, argv, tmp_path), again))
    bad_json = {" ".join(r.argv): p for r in as_json if (p := problems(r) + json_problems(r))}
    assert not bad_json, bad_json
    figure("commands run unattended", len(results))
    figure("of them re-run with --json", len(as_json))
    figure("of them completed (exit 0)", sum(r.code == 0 for r in results))
    by_code: dict[int, int] = {}
    for r in results:
        by_code[int(r.code or 0)] = by_code.get(int(r.code or 0), 0) + 1
    figure("exit codes", ", ".join(f"{k}: {v}" for k, v in sorted(by_code.items())))


def test_confirmation_without_yes_says_so(ci_env: dict[str, str], tmp_path: Path) -> None:
    ran = run(ci_env, ("agents", "delete", "alpha"), tmp_path)
    assert ran.code == 2
    assert ran.err.strip().splitlines() == [
        "fatctl: error: Delete agent alpha from the database: refusing without --yes (CI is set)"
    ]


def test_problems_catches_what_it_should() -> None:
    """The checker itself can fail: a hang, a prompt, colour, two error lines, a traceback."""
    assert problems(Ran(("x",), None, "", "")) == [
        f"no exit within {TIMEOUT_S:g}s (waiting for input?)"
    ]
    assert problems(Ran(("x",), 0, "\x1b[31mred\x1b[0m", "")) == ["escape sequence in output"]
    assert problems(Ran(("x",), 1, "Proceed? [y/N]: ", "fatctl: error: aborted")) == [
        "asked a question"
    ]
    assert problems(Ran(("x",), 1, "", "fatctl: error: a\nfatctl: error: b\n"))
    assert problems(Ran(("x",), 1, "", "Traceback (most recent call last):\n  boom\n"))
    assert problems(Ran(("x",), 2, "", "Usage: fatctl x\nTry --help\n"))
    assert problems(Ran(("x",), 1, "table\n", "fatctl: error: one clear line\n")) == []
    assert problems(Ran(("x",), 0, "done\n", "")) == []
    assert json_problems(Ran(("x",), 0, '{"a": 1}\n', "")) == []
    assert json_problems(Ran(("x",), 0, '{"ts": "t", "event": "e"}\n{"rows": []}\n', "")) == []
    assert json_problems(Ran(("x",), 0, "a table\n", ""))
    assert json_problems(Ran(("x",), 0, '{"event": "e"}\n{"rows": []}\n', ""))
