"""Bad input on every command: one clear line, exit 2 (1 for a missing environment), no
traceback, nothing written.

The command tree is walked from `build_app(None)`, so a new command is covered the day it
lands. Each parameter is classed by its name (agent, e-mail, key, version, server type,
label, number ...); its malformed values are hand-picked ones plus hypothesis-generated ones
that fatctl's own validators reject (the oracle), given alongside valid values for the other
required parameters. Each run goes through `fatctl.cli.main.run` in-process (the real error
mapping); after each one every table of the database and the data dir are compared with
before. A handful run as real processes on SQLite and PostgreSQL too.
"""

from __future__ import annotations

import io
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import typer
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fatctl import serving, validation
from fatctl.domain import AgentState
from fatctl.errors import BadInput

# Commands whose owners were still landing them when this sweep was written (none left now).
OTHERS: tuple[str, ...] = ()
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh3sQ0Ue9q1fYQbY8h3kHq8oUQ1i3q3m0xk2cJdJb3a ok@x"


def _rejects(check: Callable[[str], object]) -> Callable[[str], bool]:
    def invalid(value: str) -> bool:
        try:
            check(value)
        except BadInput:
            return True
        return False

    return invalid


def _one_of(*allowed: str) -> Callable[[str], bool]:
    return lambda value: value not in allowed


def _bad_number(param: click.Parameter) -> Callable[[str], bool]:
    def invalid(value: str) -> bool:
        try:
            number = float(value) if "float" in param.type.name else int(value)
        except ValueError:
            return True
        low, high = getattr(param.type, "min", None), getattr(param.type, "max", None)
        return (not math.isfinite(number)) or (low is not None and number < low) or (
            high is not None and number > high)  # fmt: skip

    return invalid


def _bad_agents(value: str) -> bool:
    names = [n.strip() for n in value.split(",") if n.strip()]
    return bool(names) and any(_rejects(validation.agent_name)(n) for n in names)


@dataclass(frozen=True)
class Kind:
    invalid: Callable[[str], bool]
    fixed: tuple[str, ...]
    valid: str


NAMEISH = ("", " ", "Bad_Name", "UPPER", "a", "-lead", "trail-", "dou--ble", "www", "ägent",
           "名字", "x" * 41, "a" * 5000, "a b", "../etc", "a\nb", "\u202eevil",
           "😀😀😀")  # fmt: skip
KINDS: dict[str, Kind] = {
    "agent": Kind(_rejects(validation.agent_name), NAMEISH, "alpha"),
    "agents": Kind(_bad_agents, ("Bad_Name", "alpha,BAD", ",,x", "a" * 5000, "ägent"), "alpha"),
    "email": Kind(
        _rejects(validation.email),
        (
            "",
            "nope",
            "a@",
            "@b.co",
            "a@b",
            "a..b@c.co",
            "a@b.c",
            "ä@b.co",
            "a" * 300 + "@b.co",
            "a@b.co\n",
            "a @b.co",
        ),
        "ann@example.com",
    ),
    "key": Kind(
        _rejects(validation.ssh_public_key),
        (
            "",
            "garbage",
            "ssh-dss AAAA",
            "ssh-ed25519",
            "ssh-ed25519 !!!",
            "ssh-rsa AAAAB3NzaC1yc2E=",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "ssh-ed25519 " + "A" * 5000,
        ),
        KEY,
    ),
    "version": Kind(
        _rejects(validation.version),
        ("", "latest", "1.2", "v2026.9.6", "2026.9.6.1", "\uff11.\uff12.\uff13", "9" * 50),
        "2026.9.6",
    ),
    "server_type": Kind(_one_of(*validation.SERVER_TYPES), ("", "cx999", "CX23", "cx23 "), "cx33"),
    "location": Kind(_one_of(*validation.LOCATIONS), ("", "mars", "FSN1"), "fsn1"),
    "image": Kind(_one_of(*validation.IMAGES), ("", "windows", "debian-12\n"), "debian-12"),
    "plan": Kind(_one_of("managed", "byok"), ("", "free", "MANAGED"), "managed"),
    "engine": Kind(_one_of("pulumi", "hcloud", "auto"), ("", "terraform", "HCLOUD"), "hcloud"),
    "label": Kind(
        _rejects(validation.label_selector),
        ("", "novalue", "a=b=c", "=v", "k=ä", "k=" + "v" * 100, "k v=x"),
        "tier=a",
    ),
    "state": Kind(_one_of(*(s.value for s in AgentState)), ("", "bogus", "READY"), "ready"),
    "fingerprint": Kind(
        lambda v: not v.startswith("SHA256:") or len(v) != 50,
        ("", "md5:aa", "SHA256:", "SHA256:" + "x" * 500),
        "SHA256:" + "A" * 43,
    ),
    "secret_name": Kind(
        lambda v: not v or v != v.lower() or " " in v or "/" in v,
        ("", "Bad Name", "a/b", "UPPER", "x" * 300),
        "anthropic-key",
    ),
    "revision": Kind(
        lambda v: v not in ("head", "base") and not v.isdigit(),
        ("", "nope", "../x", "head;drop"),
        "head",
    ),
    "channel_kind": Kind(
        _one_of("telegram", "slack", "whatsapp"), ("", "fax", "Telegram", "telegram\n"), "whatsapp"
    ),
    "sender": Kind(
        _rejects(lambda v: serving.sender(v)),
        ("", "12ab", "4242\n", "+1", "U01", "a@b", "42 42", "x" * 300),
        "4242",
    ),
    "sender_kind": Kind(
        lambda v: v != "" and v not in {k.value for k in serving.SenderKind},
        ("fax", "EMAIL", "telegram\n"),
        "telegram",
    ),
    "model": Kind(
        _rejects(lambda v: serving.model_choice(v) if v else None),
        ("nope", "gpt-5", "nope/x", "openai/", "custom/x", "openai/gpt\n"),
        "openai/gpt-5.1",
    ),
    "missing_file": Kind(
        lambda v: not Path(v).is_file(), ("/nonexistent/key.pub", "/", "/etc/passwd\n"), ""
    ),
}
# Parameter name (optionally "command path:name") -> kind. Unlisted parameters are free text
# (filters, descriptions, remote commands) and only get the unknown/missing-option cases.
PARAM_KINDS = {
    "agent": "agent", "name": "agent", "agents": "agents", "owner": "email", "key": "key",
    "to": "version", "version": "version", "runtime": "version", "node": "version",
    "server_type": "server_type", "location": "location", "image": "image", "plan": "plan",
    "engine": "engine", "label": "label", "state": "state", "fingerprint": "fingerprint",
    "revision": "revision", "file": "missing_file", "new_key": "missing_file",
    "secrets set:name": "secret_name", "creds rotate:agents": "agent",
    "keys add:label": "", "rebuild:image": "", "image build:base": "",
    "channels add:kind": "channel_kind", "channels remove:kind": "channel_kind",
    "sender": "sender", "senders add:kind": "sender_kind", "senders remove:kind": "sender_kind",
    "model set:plan": "", "model": "model", "model set:model": "model",
    # A token's name is not an agent's: `www` is a fine token name that may simply not exist.
    "tokens revoke:name": "",
}  # fmt: skip


def leaf_commands() -> list[tuple[str, click.Command]]:
    from fatctl.cli.commands import build_app

    def walk(cmd: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, (*path, name))
        else:
            yield " ".join(path), cmd

    return list(walk(typer.main.get_command(build_app(None)), ()))


COMMANDS = leaf_commands()


def kind_of(path: str, param: click.Parameter) -> Kind | None:
    name = param.name or ""
    chosen = PARAM_KINDS.get(f"{path}:{name}", PARAM_KINDS.get(name))
    if chosen:
        return KINDS[chosen]
    if chosen is None and param.type.name in ("integer range", "float range", "integer", "float"):
        return Kind(_bad_number(param), ("", "abc", "-1", "nan", "inf", "1e999", "1.5", "0x1"), "1")
    return None


def is_flag(param: click.Parameter) -> bool:
    return isinstance(param, click.Option) and (param.is_flag or param.count)


def argv_for(path: str, cmd: click.Command, target: click.Parameter | None, value: str,
             valid_key_file: str) -> list[str]:  # fmt: skip
    """The command with `value` for `target` and valid values for the other required params."""
    args: list[str] = path.split()
    for p in cmd.params:
        if p is target:
            given_value = value
        elif p.required:
            kind = kind_of(path, p)
            given_value = valid_key_file if kind is KINDS["missing_file"] else (
                kind.valid if kind else "x")  # fmt: skip
        else:
            continue
        if isinstance(p, click.Argument):
            args.append(given_value)
        else:
            args.append(f"{p.opts[0]}={given_value}")
    if any(p.name == "yes" for p in cmd.params):
        args.append("--yes")  # so a command cannot hide behind its confirmation
    return args


def dump(url: str) -> str:
    """Every row of every table, ordered: equal dumps mean nothing was written."""
    path = url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return repr([(t, sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"')))) for t in tables])


def files(root: Path) -> list[tuple[str, int]]:
    """Files other than the database's own (its rows are compared; readers touch -shm)."""
    return sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith("state.sqlite"))  # fmt: skip


@dataclass
class World:
    url: str
    data: Path
    key_file: str
    baseline: str = ""
    baseline_files: tuple[tuple[str, int], ...] = ()
    checked: int = 0
    commands: int = 0

    def invoke(self, argv: list[str]) -> tuple[int, str, str]:
        from fatctl.cli.main import run

        out, err = io.StringIO(), io.StringIO()
        stdin, sys.stdin = sys.stdin, io.StringIO("")
        try:
            with redirect_stdout(out), redirect_stderr(err):
                try:
                    run(argv)
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdin = stdin
        return code, out.getvalue(), err.getvalue()

    def check(self, argv: list[str]) -> None:
        self.checked += 1
        code, _, err = self.invoke(argv)
        lines = err.splitlines()
        shown = f"{argv!r} -> exit {code}: {err!r}"[:800]
        assert "Traceback" not in err and "internal error" not in err, shown
        assert code in (1, 2) and len(lines) == 1 and lines[0].startswith("fatctl: error: "), shown
        if code == 1:  # only the environment may fail a malformed call with 1
            assert "missing setting" in err or "not initialised" in err, shown
        assert dump(self.url) == self.baseline, f"database changed by {argv!r}"
        assert tuple(files(self.data)) == self.baseline_files, f"files changed by {argv!r}"

    def snapshot(self) -> None:
        self.commands += 1
        self.baseline = dump(self.url)
        self.baseline_files = tuple(files(self.data))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A migrated SQLite state with one agent and keys; no cloud credentials at all."""
    from fatctl.secrets import generate_master_key
    from tests.fixtures.sshd import keygen

    tmp = tmp_path_factory.mktemp("badinput")
    saved = dict(os.environ)
    for k in [k for k in os.environ if k.startswith(("FATCTL_", "HCLOUD", "CLOUDFLARE"))
              and not k.startswith("FATCTL_TEST_")]:  # fmt: skip
        del os.environ[k]
    url = f"sqlite:///{tmp / 'data' / 'state.sqlite'}"
    os.environ.update(FATCTL_DATA_DIR=str(tmp / "data"), FATCTL_DATABASE_URL=url, CI="1",
                      FATCTL_MASTER_KEY=generate_master_key(), FATCTL_ACTOR="fuzz@test",
                      XDG_CONFIG_HOME=str(tmp / "cfg"), HOME=str(tmp))  # fmt: skip
    keygen(tmp / "op", "op@test")
    w = World(url, tmp / "data", str(tmp / "op.pub"))
    try:
        for argv in (["db", "upgrade"], ["agents", "create", "alpha", "--owner", "ann@example.com"],
                     ["keys", "add", "--operator", "--file", w.key_file, "--no-push"]):  # fmt: skip
            code, _, err = w.invoke(argv)
            assert code == 0, (argv, err)
        yield w
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _mark(path: str) -> Any:
    if path.split()[0] in OTHERS:
        return pytest.mark.xfail(reason=f"`{path}` is owned by its own engineer (landing now); "
                                 "failing cases are reported to them", strict=False)  # fmt: skip
    return ()


@pytest.mark.parametrize(
    ("path", "cmd"), [pytest.param(p, c, id=p, marks=_mark(p)) for p, c in COMMANDS]
)
def test_malformed_input_is_one_line_and_writes_nothing(
    world: World, path: str, cmd: click.Command
) -> None:
    world.snapshot()
    world.check([*path.split(), "--no-such-option-x"])
    for p in cmd.params:
        if isinstance(p, click.Option) and not is_flag(p) and p.name != "help":
            world.check([*path.split(), p.opts[0]])  # an option without its value
        kind = kind_of(path, p)
        if kind is None:
            continue
        for value in kind.fixed:
            if kind.invalid(value):
                world.check(argv_for(path, cmd, p, value, world.key_file))
    fuzzable = [p for p in cmd.params if kind_of(path, p) is not None]
    if fuzzable:
        fuzz(world, path, cmd, fuzzable)


TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
               max_size=60) | st.text("abcXYZ019-_.@=,: ", max_size=70)  # fmt: skip


def fuzz(world: World, path: str, cmd: click.Command, params: list[click.Parameter]) -> None:
    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    )
    @given(param=st.sampled_from(params), value=TEXT)  # fmt: skip
    def one(param: click.Parameter, value: str) -> None:
        kind = kind_of(path, param)
        assume(kind is not None and kind.invalid(value))
        world.check(argv_for(path, cmd, param, value, world.key_file))

    one()


SUBPROCESS_CASES = [
    (["agents", "create", "Bad_Name", "--owner", "a@b.co"], 2),
    (["provision", "ägent", "--owner", "a@b.co"], 2),
    (["provision", "alpha", "--owner", "a@b.co", "--wait", "nan"], 2),
    (["destroy", "x" * 5000, "--yes"], 2),
    (["keys", "add", "--agent", "alpha", "--key", "ssh-ed25519 " + "A" * 3000], 2),
    (["secrets", "set", "Bad Name", "--agent", "alpha"], 2),
    (["audit", "--limit", "-5"], 2),
    (["box", "resize", "BAD", "cx33", "--yes"], 2),
]


def test_figures(world: World, figure: Callable[..., None]) -> None:
    """Runs after the sweep above (file order): how much it checked."""
    figure("commands swept", world.commands)
    figure(
        "malformed invocations checked (each: one line, exit 1/2, nothing written)", world.checked
    )
    assert world.commands == 0 or world.checked > world.commands


def test_real_processes_on_both_databases(db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import MetaData, create_engine, select

    from fatctl.secrets import generate_master_key
    from tests.fixtures.cli import fatctl_env, run_fatctl

    env = fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path),
        FATCTL_DATABASE_URL=db_url,
        FATCTL_MASTER_KEY=generate_master_key(),
        XDG_CONFIG_HOME=str(tmp_path / "c"),
    )

    def fatctl(*args: str) -> subprocess.CompletedProcess[str]:
        return run_fatctl(*args, env=env, input="", timeout=120)  # a real process, empty stdin

    def snapshot() -> list[Any]:
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            rows = [(t.name, sorted(map(repr, conn.execute(select(t)).all())))
                    for t in meta.sorted_tables]  # fmt: skip
        engine.dispose()
        return rows

    assert fatctl("db", "upgrade").returncode == 0
    assert fatctl("agents", "create", "alpha", "--owner", "ann@example.com").returncode == 0
    before = snapshot()
    for args, code in SUBPROCESS_CASES:
        proc = fatctl(*args)
        lines = proc.stderr.splitlines()
        assert proc.returncode == code and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("fatctl: error: "), (args, proc.stderr)
    assert snapshot() == before
