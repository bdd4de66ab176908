"""`fatctl cost` as a real process against the Hetzner emulator: boxes created by the hcloud
engine, agents in a migrated database, prices from the emulator's `/pricing` (read once, then
cached), exact figures in JSON and a clear line for a bad setting."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fatctl.domain import AgentState, ServicePlan
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.engines.conftest import agent_spec, emulator_settings


@pytest.fixture
def emulator(hetzner_emulator: Any) -> Any:
    return hetzner_emulator


def _agent_rows(url: str, rows: list[tuple[str, ServicePlan, str, str, str]]) -> None:
    from fatctl.state import repo
    from fatctl.state.db import make_engine, session_scope
    from fatctl.state.models import Agent

    engine = make_engine(url)
    with session_scope(engine) as session:
        for name, plan, stype, location, state in rows:
            owner = repo.get_or_create_owner(session, f"{name}@example.com", plan.value)
            session.add(Agent(name=name, agent_id=f"id-{name}", owner_id=owner.id or 0,
                              state=state, server_type=stype, location=location,
                              image="debian-12", runtime_version="2026.9.6"))  # fmt: skip
    engine.dispose()


@pytest.fixture
def env(tmp_path: Path, emulator: Any, sqlite_url: str) -> dict[str, str]:
    from fatctl.state.migrate import upgrade

    upgrade(sqlite_url)
    engine = HcloudEngine(emulator_settings(emulator, tmp_path), timing=Timing.instant())
    engine.apply(agent_spec("alice", plan=ServicePlan.MANAGED))  # cx23 fsn1, backups on
    engine.apply(agent_spec("bob", plan=ServicePlan.BYOK, server_type="cpx22", location="ash"))
    _agent_rows(sqlite_url, [
        ("alice", ServicePlan.MANAGED, "cx23", "fsn1", AgentState.READY.value),
        # the database says cx23, Hetzner runs cpx22: the cost follows Hetzner
        ("bob", ServicePlan.BYOK, "cx23", "ash", AgentState.READY.value),
        ("carol", ServicePlan.MANAGED, "cx33", "nbg1", AgentState.REQUESTED.value),
        ("dave", ServicePlan.BYOK, "cx23", "fsn1", AgentState.DESTROYED.value),
    ])  # fmt: skip
    return fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path / "data"),
        FATCTL_DATABASE_URL=sqlite_url,
        FATCTL_POLL_INTERVAL="0.01",
        HCLOUD_TOKEN=emulator.token,
        HCLOUD_ENDPOINT=emulator.url,
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        FATCTL_PRICE_MANAGED="29.00",
        FATCTL_PRICE_BYOK="12.00",
    )


def fatctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, timeout=120)


def test_cost_json_matches_the_price_list(env: dict[str, str], emulator: Any, figure: Any) -> None:
    emulator.reset_stats()
    proc = fatctl(env, "cost", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    rows = {a["agent"]: a for a in doc["agents"]}
    assert set(rows) == {"alice", "bob", "carol"}  # destroyed agents cost nothing
    alice, bob, carol = rows["alice"], rows["bob"], rows["carol"]
    # 3.49 + 0.50 (IPv4) + 0 (IPv6) + 20 % backups 0.698 = 4.688; 29 - 4.688 = 24.312
    assert (alice["server"], alice["ipv4"], alice["ipv6"]) == ("3.4900", "0.5000", "0.0000")
    assert (alice["backups"], alice["cost"], alice["margin"]) == ("0.6980", "4.6880", "24.3120")
    # cpx22 in Ashburn (as running, not as recorded): 7.188 + 0.50, no backups (BYOK)
    assert (bob["server_type"], bob["source"]) == ("cpx22", "hetzner")
    assert (bob["cost"], bob["margin"]) == ("7.6880", "4.3120")
    # not at Hetzner yet: costed as recorded, 5.49 + 0.50 + 1.098
    assert (carol["source"], carol["cost"]) == ("database", "7.0880")
    assert doc["total"] == {"agents": 3, "cost": "19.4640", "revenue": "70.0000",
                            "margin": "50.5360"}  # fmt: skip
    assert doc["currency"] == "EUR" and doc["basis"] == "net per month"
    assert emulator.stats()["calls"].get("GET /v1/pricing") == 1
    figure("Hetzner calls for `fatctl cost` (3 agents, price list not cached)",
           emulator.stats()["total"])  # fmt: skip
    emulator.reset_stats()

    # A second run reads the cached price list: no second call to /pricing.
    table = fatctl(env, "cost")
    assert table.returncode == 0, table.stderr
    assert "TOTAL (3)" in table.stdout and "19.46" in table.stdout and "50.54" in table.stdout
    assert "GET /v1/pricing" not in emulator.stats()["calls"]
    figure("Hetzner calls for `fatctl cost` (price list cached)", emulator.stats()["total"])


def test_bad_plan_price_is_one_line_before_any_api_call(env: dict[str, str], emulator: Any) -> None:
    emulator.reset_stats()
    proc = fatctl({**env, "FATCTL_PRICE_MANAGED": "lots"}, "cost", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == 2  # --json: the error as JSON too
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "FATCTL_PRICE_MANAGED" in lines[0], proc.stderr
    assert emulator.stats()["total"] == 0
