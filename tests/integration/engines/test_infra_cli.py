"""`fatctl box ...`, `fatctl rebuild` as real processes against the Hetzner emulator: exit
codes, one-line errors, no prompt without a terminal, JSON for pipelines."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
from fatctl.secrets import generate_master_key
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.engines.conftest import OP_KEY, emulator_settings

HEAVY = ("pulumi", "hcloud", "cloudflare")


@pytest.fixture
def quick_emulator(tmp_path: Path) -> Iterator[Any]:
    # Actions finish at once, so the CLI's real 1 s poll interval never has to wait.
    from fatctl.sandbox.hetzner import start_emulator

    handle = start_emulator(tmp_path / "hz", action_delay=0.0)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def env(tmp_path: Path, quick_emulator: Any, sqlite_url: str) -> dict[str, str]:
    from fatctl.state.migrate import upgrade

    upgrade(sqlite_url)
    return fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path / "data"),
        FATCTL_DATABASE_URL=sqlite_url,
        FATCTL_MASTER_KEY=generate_master_key(),
        FATCTL_ACTOR="test@ci",
        FATCTL_ENGINE="hcloud",
        FATCTL_POLL_INTERVAL="0.01",
        FATCTL_API_RETRIES="2",
        FATCTL_DOMAIN="agents.example.net",
        HCLOUD_TOKEN=quick_emulator.token,
        HCLOUD_ENDPOINT=quick_emulator.url,
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
    )


def fatctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, timeout=120)


def one_line(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fatctl: error: ") and needle in lines[0], (
        proc.stderr
    )


def test_box_commands_end_to_end(env: dict[str, str], quick_emulator: Any, tmp_path: Path) -> None:
    created = fatctl(env, "agents", "create", "alice", "--owner", "alice@example.com", "--json")
    assert created.returncode == 0, created.stderr
    key = fatctl(env, "keys", "add", "--operator", "--key", OP_KEY, "--no-push")
    assert key.returncode == 0, key.stderr
    plan = fatctl(env, "box", "plan", "alice", "--json")
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    assert doc["create"] >= 5 and doc["changes"]  # nothing exists yet
    from fatctl.services.common.specs import spec_for_agent
    from fatctl.state.db import make_engine

    db = make_engine(env["FATCTL_DATABASE_URL"])
    settings = replace(emulator_settings(quick_emulator, tmp_path), domain=env["FATCTL_DOMAIN"])
    spec = spec_for_agent("alice", engine=db, settings=settings)
    HcloudEngine(settings, timing=Timing.instant()).apply(spec)
    db.dispose()
    unchanged = json.loads(fatctl(env, "box", "plan", "alice", "--json").stdout)
    assert (unchanged["create"], unchanged["update"], unchanged["replace"]) == (0, 0, 0)

    status = json.loads(fatctl(env, "box", "status", "alice", "--json").stdout)
    assert status["status"] == "running" and status["ipv4"]
    one_line(fatctl(env, "box", "off", "alice"), 2, "refusing without --yes")
    assert fatctl(env, "box", "off", "alice", "--yes").returncode == 0
    assert json.loads(fatctl(env, "box", "status", "alice", "--json").stdout)["status"] == "off"
    assert fatctl(env, "box", "on", "alice").returncode == 0
    snap = json.loads(fatctl(env, "box", "snapshot", "alice", "--json").stdout)
    assert snap["image"].isdigit()
    resized = fatctl(env, "box", "resize", "alice", "cx33", "--yes", "--json")
    assert resized.returncode == 0 and json.loads(resized.stdout)["type"] == "cx33"
    rebuilt = fatctl(env, "rebuild", "alice", "--yes", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    events = [json.loads(line) for line in rebuilt.stdout.splitlines()]
    assert events[0]["event"] == "snapshot" and events[-1]["ipv4"] == status["ipv4"]
    budget = json.loads(fatctl(env, "box", "api", "--json").stdout)
    assert budget[0]["api"] == "hetzner" and budget[0]["limit"] == 3600
    via_status = json.loads(fatctl(env, "status", "--api", "--json").stdout)
    assert via_status[0]["api"] == "hetzner" and via_status[0]["remaining"] < 3600
    assert quick_emulator.token not in rebuilt.stdout + rebuilt.stderr


def test_errors_are_one_line(env: dict[str, str]) -> None:
    one_line(fatctl(env, "box", "on", "ghost"), 1, "agent ghost has no server")
    one_line(fatctl(env, "box", "status", "bad name!"), 2, "is not an agent name")
    one_line(fatctl(env, "box", "plan", "nobody", "--engine", "terraform"), 2, "unknown engine")
    broken = {**env, "HCLOUD_ENDPOINT": "http://127.0.0.1:9/v1"}
    proc = fatctl(broken, "box", "status", "alice")
    one_line(proc, 1, "Hetzner API")


def test_resize_backs_up_first_or_changes_nothing(
    env: dict[str, str], quick_emulator: Any, tmp_path: Path
) -> None:
    """Issue 18: a resize (a power cycle) takes a state backup first. A backup that cannot be
    taken (here: an agent without a backup key, whose box has no fat-backup) stops the resize
    before the box is touched; --no-backup resizes and puts the skip on the record."""
    from fatctl.domain import AgentState
    from fatctl.services.common.specs import spec_for_agent
    from fatctl.state import repo
    from fatctl.state.db import make_engine, session_scope

    assert fatctl(env, "agents", "create", "alice", "--owner", "a@example.com").returncode == 0
    assert fatctl(env, "keys", "add", "--operator", "--key", OP_KEY, "--no-push").returncode == 0
    db = make_engine(env["FATCTL_DATABASE_URL"])
    settings = replace(emulator_settings(quick_emulator, tmp_path), domain=env["FATCTL_DOMAIN"])
    HcloudEngine(settings, timing=Timing.instant()).apply(
        spec_for_agent("alice", engine=db, settings=settings)
    )
    with session_scope(db) as session:  # a serving box: its state is worth a backup
        agent = repo.get_agent(session, "alice")
        repo.set_state(session, agent, AgentState.PROVISIONING)
        repo.set_state(session, agent, AgentState.READY)
    db.dispose()

    refused = fatctl(env, "box", "resize", "alice", "cx33", "--yes")
    one_line(refused, 1, "backup before resize failed")
    assert "--no-backup" in refused.stderr + refused.stdout
    assert json.loads(fatctl(env, "box", "status", "alice", "--json").stdout)["type"] == "cx23"

    resized = fatctl(env, "box", "resize", "alice", "cx33", "--no-backup", "--yes", "--json")
    assert resized.returncode == 0, resized.stderr
    done = json.loads(resized.stdout)
    assert done["type"] == "cx33" and done["backup"] == "skipped: --no-backup", done
    audit = json.loads(fatctl(env, "audit", "--target", "alice", "--json").stdout)
    assert ("resize.backup", "skipped") in [(a["action"], a["result"]) for a in audit]
