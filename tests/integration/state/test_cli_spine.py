"""The CLI as a new user meets it: real `fatctl` processes, exit codes, one-line errors,
nothing written on bad input, and no planted secret anywhere after a full run."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fatctl.secrets import generate_master_key
from tests.fixtures.cli import fatctl_env, run_fatctl

HEAVY = ("pulumi", "hcloud", "cloudflare", "paramiko", "sqlalchemy", "sqlmodel", "cryptography")


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, input=stdin, timeout=120)


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path / "data"),
        FATCTL_DATABASE_URL=db_url,
        FATCTL_MASTER_KEY=generate_master_key(),
        FATCTL_ACTOR="test@ci",
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
    )


def fingerprint_db(env: dict[str, str]) -> str:
    out = run(env, "audit", "--json", "--limit", "10000").stdout
    agents = run(env, "agents", "list", "--json").stdout
    return hashlib.sha256((out + agents).encode()).hexdigest()


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fatctl: error: "), proc.stderr
    assert needle in lines[0]
    assert "Traceback" not in proc.stderr


def test_help_does_not_import_heavy_sdks() -> None:
    code = "import sys; import fatctl.cli.main; print(','.join(m for m in sys.modules))"
    mods = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(mods.strip().split(","))
    assert not [h for h in HEAVY if h in loaded]


def test_unmigrated_then_bad_input_then_wrong_key(cli_env: dict[str, str]) -> None:
    assert_one_line(run(cli_env, "agents", "list"), 1, "run `fatctl db upgrade` first")
    assert run(cli_env, "db", "upgrade").returncode == 0
    assert run(cli_env, "agents", "create", "alpha", "--owner", "ann@example.com").returncode == 0
    before = fingerprint_db(cli_env)
    cases = [
        (("agents", "create", "Bad_Name", "--owner", "a@b.co"), 2, "must be lowercase"),
        (("agents", "create", "www", "--owner", "a@b.co"), 2, "is reserved"),
        (("agents", "create", "beta", "--owner", "nope"), 2, "is not valid"),
        (
            ("agents", "create", "beta", "--owner", "a@b.co", "--type", "cx999"),
            2,
            "unknown server type",
        ),
        (("agents", "create", "alpha", "--owner", "ann@example.com"), 2, "already exists"),
        (("agents", "show", "ghost"), 1, "no agent named 'ghost'"),
        (
            ("keys", "add", "--agent", "alpha", "--key", "ssh-dss AAAA"),
            2,
            "DSA keys are not accepted",
        ),
        (("keys", "add", "--agent", "alpha", "--key", "garbage"), 2, "not an OpenSSH public key"),
        (("agents", "delete", "alpha"), 2, "refusing without --yes"),
        (("agents", "list", "--bogus"), 2, "No such option"),
    ]
    for args, code, needle in cases:
        assert_one_line(run(cli_env, *args), code, needle)
    assert fingerprint_db(cli_env) == before
    wrong = dict(cli_env, FATCTL_MASTER_KEY=generate_master_key())
    assert_one_line(run(wrong, "secrets", "rotate-master", "--yes"), 1, "no master key with id")
    assert_one_line(
        run(
            dict(cli_env, FATCTL_MASTER_KEY="short"), "agents", "create", "b2b", "--owner", "a@b.co"
        ),
        2,
        "FATCTL_MASTER_KEY",
    )
    no_key = {k: v for k, v in cli_env.items() if k != "FATCTL_MASTER_KEY"}
    assert_one_line(
        run(no_key, "agents", "create", "gamma", "--owner", "a@b.co"),
        2,
        "missing setting master_key",
    )
    assert fingerprint_db(cli_env) == before


def test_planted_secret_appears_nowhere(
    cli_env: dict[str, str], tmp_path: Path, db_url: str
) -> None:
    planted = "sk-PLANTED-" + base64.b32encode(os.urandom(15)).decode()
    env = dict(cli_env, FATCTL_DEBUG="1")
    outputs = []
    for args, stdin in [
        (("db", "upgrade"), ""),
        (("agents", "create", "alpha", "--owner", "ann@example.com"), ""),
        (("secrets", "set", "anthropic-key", "--agent", "alpha"), planted + "\n"),
        (("secrets", "list", "--agent", "alpha", "--json"), ""),
        (("agents", "show", "alpha", "--json"), ""),
        (("audit", "--json"), ""),
        (("config", "show", "--json"), ""),
        (("secrets", "set", "Bad Name", "--agent", "alpha"), planted),
    ]:
        proc = run(env, *args, stdin=stdin)
        outputs += [proc.stdout, proc.stderr]
    assert json.loads(run(env, "secrets", "list", "--agent", "alpha", "--json").stdout)
    blob = "\n".join(outputs)
    assert planted not in blob
    if db_url.startswith("sqlite"):
        raw = Path(db_url.split("///", 1)[1]).read_bytes()
        for extra in Path(db_url.split("///", 1)[1]).parent.glob("*.sqlite-wal"):
            raw += extra.read_bytes()
    else:
        raw = subprocess.run(
            ["pg_dump", "--data-only", db_url.replace("+psycopg", "")],
            capture_output=True,
            check=True,
        ).stdout
    assert planted.encode() not in raw
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert planted.encode() not in path.read_bytes(), path
