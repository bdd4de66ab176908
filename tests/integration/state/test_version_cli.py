"""`fatctl version` / `fatctl --version` through the real CLI process, and click's suggestion
for a mistyped command printed once (it used to read "Did you mean 'provision'?" twice)."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from fatctl.state.db import HEAD_REVISION
from tests.fixtures.cli import fatctl_env, run_fatctl


def test_version_names_fatctl_runtime_schema_and_sdks(tmp_path: Path) -> None:
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path), FATCTL_RUNTIME_VERSION="2026.9.7")
    report = json.loads(run_fatctl("version", "--json", env=env, timeout=60, check=0).stdout)
    assert report["fatctl"] == metadata.version("fatctl")
    assert report["openclaw"] == "2026.9.7" and report["openclaw_pinned"] == "2026.9.6"
    assert report["schema"] == HEAD_REVISION and report["database_schema"] == "not created"
    assert report["sdks"]["hcloud"] == metadata.version("hcloud")
    assert not (tmp_path / "fatctl.sqlite").exists(), "version must not create a database"

    run_fatctl("db", "upgrade", env=env, timeout=60, check=0)
    shown = run_fatctl("--version", env=env, timeout=60, check=0).stdout
    assert f"database_schema  {HEAD_REVISION}" in shown and "pulumi-hcloud" in shown


def test_a_mistyped_command_is_suggested_once(tmp_path: Path) -> None:
    proc = run_fatctl("provison", env=fatctl_env(FATCTL_DATA_DIR=str(tmp_path)), timeout=60,
                      check=2)  # fmt: skip
    assert proc.stderr.count("Did you mean 'provision'?") == 1, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
