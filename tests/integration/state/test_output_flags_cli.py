"""The global output flags through real `fatctl` processes: `-o table|json|yaml|columns=...`
(before or after the command), `--no-headers`, `-q`, and the JSON error document."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from fatctl.secrets import generate_master_key
from tests.fixtures.cli import fatctl_env, run_fatctl


def fatctl(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, timeout=120, check=code)


def one_error_line(proc: subprocess.CompletedProcess[str], needle: str) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fatctl: error: "), proc.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    built = fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path / "data"),
        FATCTL_DATABASE_URL=sqlite_url,
        FATCTL_MASTER_KEY=generate_master_key(),
        FATCTL_ACTOR="test@ci",
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
    )
    fatctl(built, "db", "upgrade")
    for name in ("alpha", "beta"):
        fatctl(built, "agents", "create", name, "--owner", f"{name}@example.com")
    return built


def test_json_and_yaml_parse_to_the_same_document(env: dict[str, str]) -> None:
    as_json = json.loads(fatctl(env, "agents", "list", "--json").stdout)
    assert [a["name"] for a in as_json] == ["alpha", "beta"]
    assert json.loads(fatctl(env, "agents", "list", "-o", "json").stdout) == as_json
    assert json.loads(fatctl(env, "-o", "json", "agents", "list").stdout) == as_json
    assert yaml.safe_load(fatctl(env, "agents", "list", "-o", "yaml").stdout) == as_json
    shown = json.loads(fatctl(env, "agents", "show", "alpha", "--json").stdout)
    assert yaml.safe_load(fatctl(env, "agents", "show", "alpha", "-oyaml").stdout) == shown
    # A command with its own machine-readable branch (not a table) follows -o as well.
    config = json.loads(fatctl(env, "config", "show", "--json").stdout)
    assert yaml.safe_load(fatctl(env, "-o", "yaml", "config", "show").stdout) == config
    assert "data_dir" in config


def test_columns_and_headers(env: dict[str, str]) -> None:
    table = fatctl(env, "agents", "list", "-o", "columns=state,name").stdout.splitlines()
    assert table[0] == "agents" and table[1].split() == ["state", "name"]
    assert [line.split() for line in table[3:]] == [["requested", "alpha"], ["requested", "beta"]]
    bare = fatctl(env, "--no-headers", "agents", "list", "-o", "columns=name,ipv4").stdout
    assert bare.splitlines() == ["alpha", "beta"]  # no title, header or rule; empty ipv4
    plain = fatctl(env, "agents", "list", "--no-headers").stdout.splitlines()
    assert len(plain) == 2 and plain[0].split()[:2] == ["alpha", "requested"]
    # One record under -o columns= is a one-row table of the keys asked for.
    one = fatctl(env, "agents", "show", "beta", "-o", "columns=name,plan", "--no-headers")
    assert one.stdout.split() == ["beta", "managed"]
    none = fatctl(env, "agents", "list", "--state", "ready", "--no-headers", "-o", "columns=name")
    assert none.stdout == "" and none.stderr == "no agents\n"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("agents", "list", "-o", "columns=name,colour"),
         "unknown column 'colour': the columns are name, state, owner, type, location, runtime"),
        (("agents", "list", "-o", "xml"), "unknown output format 'xml': use table, json, yaml"),
        (("agents", "list", "--json", "-o", "yaml"), "--json is -o json: it conflicts with"),
    ],
)  # fmt: skip
def test_unknown_column_or_format_is_bad_input(
    env: dict[str, str], args: tuple[str, ...], needle: str
) -> None:
    proc = fatctl(env, *args, code=2)
    one_error_line(proc, needle)
    assert proc.stdout == ""


def test_quiet_prints_nothing_but_errors(env: dict[str, str]) -> None:
    created = fatctl(env, "-q", "agents", "create", "gamma", "--owner", "g@example.com")
    assert (created.stdout, created.stderr) == ("", "")
    listed = fatctl(env, "agents", "list", "--quiet")
    assert (listed.stdout, listed.stderr) == ("", "")
    # Output a script asked for by format is still what it reads.
    asked = fatctl(env, "agents", "list", "-q", "-o", "columns=name", "--no-headers")
    assert asked.stdout.split() == ["alpha", "beta", "gamma"] and asked.stderr == ""
    failed = fatctl(env, "-q", "agents", "show", "nosuch", code=1)
    assert failed.stdout == ""
    one_error_line(failed, "no agent named 'nosuch'")


def test_an_error_is_also_a_json_document(env: dict[str, str]) -> None:
    missing = fatctl(env, "agents", "show", "nosuch", "--json", code=1)
    line = one_error_line(missing, "no agent named 'nosuch'")
    doc = json.loads(missing.stdout)
    assert doc == {"error": {"code": 1, "kind": "not_found", "message": "no agent named 'nosuch'",
                             "hint": "see `fatctl agents list`"}}  # fmt: skip
    assert line == f"fatctl: error: {doc['error']['message']} ({doc['error']['hint']})"
    bad = fatctl(env, "-o", "json", "agents", "show", "Not_A_Name", code=2)
    assert json.loads(bad.stdout)["error"]["kind"] == "bad_input"
    usage = fatctl(env, "agents", "list", "--colour", "--json", code=2)
    assert json.loads(usage.stdout)["error"]["kind"] == "usage"
    as_yaml = yaml.safe_load(fatctl(env, "agents", "show", "nosuch", "-o", "yaml", code=1).stdout)
    assert as_yaml["error"]["code"] == 1 and "hint" in as_yaml["error"]
    # Without a machine-readable format, stdout stays empty on failure.
    assert fatctl(env, "agents", "show", "nosuch", code=1).stdout == ""
