"""Named contexts as `load_settings` resolves them (fatctl.contexts): which one a run uses, what a
context inherits from the top level and what it never does, where its data dir is, and that a
fatctl.toml without contexts resolves exactly as it did before they existed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fatctl.config import load_settings
from fatctl.errors import ConfigError

TOML = """
domain = "top.example.com"
database_url = "postgresql://top@db.example.com/fatctl"
[hcloud]
token = "top-token"
endpoint = "https://top.example.com/v1"
[defaults]
server_type = "cx33"
[ssh]
operator_user = "ops"
jump = "bastion@top.example.com"

[contexts.staging]
domain = "staging.example.com"
data_dir = "staging-data"
[contexts.staging.hcloud]
token = "staging-token"
[contexts.staging.ssh]
port = "2222"

[contexts.production]
domain = "prod.example.com"
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    (tmp_path / "fatctl.toml").write_text(TOML)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FATCTL_DATA_DIR", raising=False)  # default_data_dir reads os.environ
    return {"FATCTL_CONFIG": str(tmp_path / "fatctl.toml"), "XDG_CONFIG_HOME": str(tmp_path)}


def record(env: dict[str, str], name: str) -> None:
    (Path(env["XDG_CONFIG_HOME"]) / "fatctl").mkdir(exist_ok=True)
    (Path(env["XDG_CONFIG_HOME"]) / "fatctl" / "current-context").write_text(name + "\n")


def test_without_a_context_the_top_level_applies(env: dict[str, str], tmp_path: Path) -> None:
    s = load_settings(env)
    assert (s.context, s.domain, s.hcloud_token.reveal()) == ("", "top.example.com", "top-token")
    assert s.data_dir == tmp_path / "xdg" / "fatctl"


def test_a_context_inherits_shared_keys_but_never_the_fleet_ones(
    env: dict[str, str], tmp_path: Path
) -> None:
    s = load_settings(env, context="staging")
    assert (s.context, s.domain, s.hcloud_token.reveal()) == (
        "staging", "staging.example.com", "staging-token"
    )  # fmt: skip
    assert (s.server_type, s.operator_user, s.ssh_port) == ("cx33", "ops", "2222")
    assert s.hcloud_endpoint == "https://api.hetzner.cloud/v1"  # not the top level's
    assert s.ssh_jump == ""  # the top level's bastion is another fleet's
    assert s.data_dir == tmp_path / "staging-data"  # relative to its fatctl.toml
    assert s.database_url == f"sqlite:///{tmp_path / 'staging-data' / 'fatctl.sqlite'}"
    prod = load_settings(env, context="production")
    assert prod.hcloud_token is None  # no token rather than the top level's
    assert prod.data_dir == tmp_path / "xdg" / "fatctl" / "contexts" / "production"
    assert prod.database_url.startswith("sqlite:///")  # not the top level's PostgreSQL


def test_env_var_then_recorded_then_none(env: dict[str, str]) -> None:
    record(env, "production")
    assert load_settings(env).context == "production"
    assert load_settings({**env, "FATCTL_CONTEXT": "staging"}).context == "staging"
    overridden = load_settings({**env, "HCLOUD_TOKEN": "env-token", "FATCTL_DATA_DIR": "/d"})
    assert (overridden.hcloud_token.reveal(), str(overridden.data_dir)) == ("env-token", "/d")


@pytest.mark.parametrize("recorded", [False, True])
def test_unknown_context_is_bad_input_naming_the_known(env: dict[str, str], recorded: bool) -> None:
    if recorded:
        record(env, "qa")
    with pytest.raises(ConfigError) as err:
        load_settings(env if recorded else {**env, "FATCTL_CONTEXT": "qa"})
    assert err.value.exit_code == 2
    assert "unknown context 'qa'" in err.value.one_line()
    assert "known contexts: production, staging" in err.value.one_line()


def test_a_config_without_contexts_ignores_the_recorded_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "fatctl.toml").write_text('domain = "top.example.com"\n')
    before = load_settings(env)
    record(env, "production")
    assert load_settings(env) == before
    assert before.context == ""
    with pytest.raises(ConfigError, match="none are defined"):
        load_settings({**env, "FATCTL_CONTEXT": "production"})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("contexts = 3\n", "must be a table of"),
        ('[contexts."bad name"]\n', "context name 'bad name'"),
        ("[contexts.x]\ndata_dir = 7\n", "data_dir"),
    ],
)
def test_malformed_contexts_are_refused(
    env: dict[str, str], tmp_path: Path, text: str, needle: str
) -> None:
    (tmp_path / "fatctl.toml").write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_settings({**env, "FATCTL_CONTEXT": "x"})
