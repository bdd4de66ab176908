"""`fatctl apply` through the Pulumi engine (the CLI cannot run here: only the Automation API
boundary is replaced, by stacks replaying a recorded `pulumi preview --json` document), with its
operational side on the Hetzner emulator: the resize is done through hcloud keeping the disk,
Pulumi's state is refreshed so `up` does not resize again, `up` runs, the gate follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fatctl.config import Settings
from fatctl.domain import RolloutPolicy
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.infra.pulumi.engine import PulumiEngine
from fatctl.pacing.timing import Timing
from fatctl.sensitive import Sensitive
from fatctl.services.fleet.apply import ApplyRun, apply_fleet, guard
from fatctl.services.fleet.preview import preview
from tests.integration.engines.conftest import agent_spec
from tests.unit.preview.conftest import Recorded, recorded, recorded_pulumi  # noqa: F401


@pytest.fixture
def db(sqlite_url: str) -> Any:
    from fatctl.state.db import make_engine
    from fatctl.state.migrate import upgrade

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def test_pulumi_apply_resizes_through_hcloud_then_up(
    recorded_pulumi: Recorded,  # noqa: F811
    hetzner_emulator: Any,
    tmp_path: Path,
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    settings = Settings(
        data_dir=tmp_path,
        database_url="sqlite://",
        master_key=Sensitive("bWFzdGVyLWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcyE="),
        hcloud_token=Sensitive(hetzner_emulator.token),
        hcloud_endpoint=hetzner_emulator.url,
        pulumi_backend_url=f"file://{tmp_path / 'state'}",
    )
    timing = Timing.instant()
    HcloudEngine(settings, timing=timing).apply(agent_spec("alice", server_type="cx23"))
    recorded_pulumi.docs["alice"] = recorded("resize")
    spec = agent_spec("alice", server_type="cx33")

    def engine(sink: Any = None) -> PulumiEngine:
        return PulumiEngine(
            settings, timing=timing, on_change=sink, which=lambda n: "/opt/p/bin/pulumi"
        )

    fleet = preview(engine(), [spec])
    assert fleet.exit_code == 3 and fleet.engine == "pulumi"
    guard(fleet, set())
    gated: list[str] = []

    def gate(agent: str) -> str | None:
        gated.append(agent)
        return None

    run = ApplyRun(db, "test", lambda kind, **f: None, engine, gate, RolloutPolicy())
    report = apply_fleet(run, fleet, [spec])
    (row,) = report.rows()
    assert row["phase"] == "succeeded", row
    assert row["changes"].split("; ")[:3] == [
        "power_off was running", "change_type cx23 -> cx33, disk kept", "power_on"
    ]  # fmt: skip
    assert "update server alice (server_type cx23 -> cx33)" in row["changes"]  # from `up`
    assert gated == ["alice"]
    calls = [c for stack in recorded_pulumi.stacks for c in stack.calls]
    assert calls == ["preview", "refresh", "up"]
    server = {s["name"]: s for s in hetzner_emulator.inventory()["servers"]}["alice"]
    assert server["server_type"] == "cx33" and server["status"] == "running"
