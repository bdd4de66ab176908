"""The CLI test helper's own contract (tests/fixtures/cli.py): what the environment it builds
keeps, drops and sets, and that `check` fails with the streams in the message. Every CLI test
leans on it, so a change to the base shows up here first."""

from __future__ import annotations

import pytest

from tests.fixtures.cli import fatctl_env, run_fatctl


def test_env_drops_shell_settings_and_sets_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FATCTL_DATABASE_URL", "HCLOUD_TOKEN", "CLOUDFLARE_API_TOKEN", "NO_COLOR"):
        monkeypatch.setenv(name, "from-the-shell")
    monkeypatch.delenv("CI", raising=False)
    env = fatctl_env({"FATCTL_DOMAIN": "a.example"}, FATCTL_DOMAIN="b.example", HOME="/h")
    assert not [k for k in env if k.startswith(("FATCTL_DATABASE", "HCLOUD", "CLOUDFLARE"))]
    assert env["NO_COLOR"] == "from-the-shell"  # dropped only when a test asks for it
    assert (env["CI"], env["FATCTL_DOMAIN"], env["HOME"]) == ("true", "b.example", "/h")
    assert "PATH" in env


def test_env_drop_and_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    env = fatctl_env(drop=("NO_COLOR",), CI=None)
    assert "NO_COLOR" not in env and "CI" not in env


def test_check_reports_the_exit_code_and_both_streams() -> None:
    env = fatctl_env()
    with pytest.raises(AssertionError, match="No such command 'no-such-command'"):
        run_fatctl("no-such-command", env=env, timeout=60, check=0)
    assert run_fatctl("no-such-command", env=env, timeout=60, check=2).stdout == ""
