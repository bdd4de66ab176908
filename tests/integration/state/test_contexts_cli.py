"""Named contexts through real `fatctl` processes: two contexts on two data dirs never see each
other's agents, `fatctl context use` persists (0600, in the config dir), FATCTL_CONTEXT beats
it, `context show` masks every token, and an unknown context is one line, exit 2, nothing
written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from fatctl.secrets import generate_master_key
from tests.fixtures.cli import fatctl_env, run_fatctl

STAGING_TOKEN = "hc-staging-" + os.urandom(8).hex()
PROD_TOKEN = "hc-prod-" + os.urandom(8).hex()
CF_TOKEN = "cf-prod-" + os.urandom(8).hex()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "fatctl.toml").write_text(f"""
[defaults]
server_type = "cx33"

[contexts.staging]
domain = "staging.example.com"
data_dir = "staging-data"
master_key = "{generate_master_key()}"
[contexts.staging.hcloud]
token = "{STAGING_TOKEN}"

[contexts.production]
domain = "prod.example.com"
data_dir = "{tmp_path / "prod-data"}"
master_key = "{generate_master_key()}"
[contexts.production.hcloud]
token = "{PROD_TOKEN}"
[contexts.production.cloudflare]
api_token = "{CF_TOKEN}"
""")
    return fatctl_env(
        FATCTL_CONFIG=str(tmp_path / "fatctl.toml"),
        FATCTL_ACTOR="test@ci",
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
    )


def run(
    env: dict[str, str], *args: str, context: str | None = None, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """`fatctl ARGS`, in `context` when given (FATCTL_CONTEXT, as `--context` sets it)."""
    with_context = env if context is None else {**env, "FATCTL_CONTEXT": context}
    return run_fatctl(*args, env=with_context, timeout=120, check=check)


def agent_names(env: dict[str, str], context: str | None = None) -> list[str]:
    listed = run(env, "agents", "list", "--json", context=context).stdout
    return [agent["name"] for agent in json.loads(listed)]


def one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fatctl: error: "), proc.stderr
    return lines[0]


def test_two_contexts_keep_two_fleets_apart(env: dict[str, str], tmp_path: Path) -> None:
    for context, agent in (("staging", "alpha"), ("production", "bravo")):
        run(env, "db", "upgrade", context=context)
        run(env, "agents", "create", agent, "--owner", "ann@example.com", context=context)
    assert agent_names(env, "staging") == ["alpha"]
    assert agent_names(env, "production") == ["bravo"]
    assert (tmp_path / "staging-data" / "fatctl.sqlite").is_file()
    assert (tmp_path / "prod-data" / "fatctl.sqlite").is_file()
    assert not (tmp_path / "xdg" / "fatctl").exists()  # the top level's data dir was never used
    shown = json.loads(run(env, "agents", "show", "alpha", "--json", context="staging").stdout)
    assert shown["server_type"] == "cx33"  # the shared [defaults] reach every context


def test_use_persists_and_the_environment_wins(env: dict[str, str], tmp_path: Path) -> None:
    for context, agent in (("staging", "alpha"), ("production", "bravo")):
        run(env, "db", "upgrade", context=context)
        run(env, "agents", "create", agent, "--owner", "ann@example.com", context=context)
    current = tmp_path / "cfg" / "fatctl" / "current-context"
    assert not current.exists()
    run(env, "context", "use", "production")
    assert current.read_text().strip() == "production"
    assert stat.S_IMODE(current.stat().st_mode) == 0o600
    assert agent_names(env) == ["bravo"]  # a later process, no FATCTL_CONTEXT
    listed = json.loads(run(env, "context", "list", "--json").stdout)
    assert [(c["name"], c["current"]) for c in listed] == [("production", True), ("staging", False)]
    assert agent_names(env, "staging") == ["alpha"]  # FATCTL_CONTEXT (what --context sets) wins
    config = json.loads(run(env, "config", "show", "--json", context="staging").stdout)
    assert config["context"] == "staging"


def test_unknown_context_names_the_known_ones_and_writes_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    run(env, "context", "use", "staging")
    current = tmp_path / "cfg" / "fatctl" / "current-context"
    before = current.read_bytes()
    for args, context in ((("context", "use", "qa"), None), (("agents", "list"), "qa"),
                          (("context", "show", "qa"), None)):  # fmt: skip
        line = one_line(run(env, *args, context=context, check=None), 2)
        assert "unknown context 'qa'" in line and "known contexts: production, staging" in line
    assert current.read_bytes() == before
    assert not (tmp_path / "qa").exists()


def test_show_masks_every_token(env: dict[str, str]) -> None:
    outputs = [
        run(env, "context", "show", "production").stdout,
        run(env, "context", "show", "production", "--json").stdout,
        run(env, "context", "show", context="staging").stdout,
        run(env, "context", "list", "--json").stdout,
    ]
    for out in outputs:
        assert STAGING_TOKEN not in out and PROD_TOKEN not in out and CF_TOKEN not in out
    prod = json.loads(outputs[1])
    assert (prod["context"], prod["domain"]) == ("production", "prod.example.com")
    assert prod["hcloud_token"] == prod["cloudflare_api_token"] == prod["master_key"] == "*** (set)"
    assert "context staging" in outputs[2] and "staging.example.com" in outputs[2]


def test_without_contexts_nothing_changes(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "context", "use", "staging")
    (tmp_path / "fatctl.toml").write_text('domain = "top.example.com"\n')
    config = json.loads(run(env, "config", "show", "--json").stdout)
    assert (config["context"], config["domain"]) == ("", "top.example.com")
    assert config["data_dir"] == str(tmp_path / "xdg" / "fatctl")
    listed = run(env, "context", "list")
    assert "defines no [contexts.NAME] tables" in listed.stdout
    assert json.loads(run(env, "context", "list", "--json").stdout) == []
