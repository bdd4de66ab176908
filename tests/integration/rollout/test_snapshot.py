"""`--snapshot`: each box is snapshotted at Hetzner (the sandbox's emulator, through the real
hcloud engine) before it is touched; the image id is recorded on its step and shown."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fatctl.domain import RolloutPolicy
from fatctl.pacing.poll import Poll
from fatctl.sensitive import Sensitive
from fatctl.services.rollout import engine as rollout
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.rollout import harness
from tests.integration.rollout.conftest import BoxFleet
from tests.integration.rollout.harness import NEW, OLD


def _servers(client: Any, names: list[str]) -> None:
    from hcloud.images import Image
    from hcloud.server_types import ServerType

    for name in names:
        made = client.servers.create(
            name=name,
            server_type=ServerType(name="cx23"),
            image=Image(name="debian-12"),
            labels={"managed-by": "fatctl", "agent": name},
        )
        made.action.wait_until_finished()


def _cloud_env(emulator: Any) -> dict[str, str]:
    return {
        "HCLOUD_TOKEN": emulator.token,
        "HCLOUD_ENDPOINT": emulator.url,
        "FATCTL_POLL_INTERVAL": "0.02",
        "FATCTL_API_RETRIES": "2",
    }


def _fatctl(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, timeout=timeout)


def test_upgrade_snapshots_each_box_first_and_records_it(
    box_fleet: Callable[[int], BoxFleet], hetzner_emulator: Any, hcloud_client: Any
) -> None:
    box = box_fleet(3)
    _servers(hcloud_client, ["box1", "box2"])  # box3 has no server: its snapshot must fail
    settings = replace(
        box.fleet.settings,
        hcloud_token=Sensitive(hetzner_emulator.token),
        hcloud_endpoint=hetzner_emulator.url,
        poll_interval="0.02",
        api_retries="2",
    )
    seen: list[tuple[str, dict[str, Any]]] = []
    run = rollout.Run(
        box.fleet.engine,
        settings,
        box.layout,
        "test@ci",
        lambda k, **f: seen.append((k, f)),
        Poll(0.2),
    )
    policy = RolloutPolicy(canary=1, batch=5, max_failures=1, snapshot=True, health_timeout_s=10)
    report = rollout.start(run, [h.target() for h in box.hosts], NEW, policy)

    rows = {r["agent"]: r for r in report.rows}
    assert (rows["box1"]["phase"], rows["box2"]["phase"]) == ("succeeded", "succeeded")
    assert rows["box3"]["phase"] == "failed" and rows["box3"]["snapshot"] == ""
    assert "snapshot before upgrade failed" in rows["box3"]["error"]
    assert "no server" in rows["box3"]["error"]
    assert harness.events(box.hosts[2]) == [f"start {OLD}"]  # never touched without a snapshot
    images = hcloud_client.images.get_all(type=["snapshot"], label_selector="rollout=1")
    by_agent = {i.labels["agent"]: str(i.id) for i in images}
    assert by_agent == {"box1": rows["box1"]["snapshot"], "box2": rows["box2"]["snapshot"]}
    assert all(i.labels["kind"] == "pre-upgrade" for i in images)
    assert [f["agent"] for k, f in seen if k == "host.snapshot"] == ["box1", "box2"]

    env = fatctl_env(box.env)
    shown = _fatctl(env, "rollout", "show", "1", timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "snapshot" in shown.stdout and rows["box1"]["snapshot"] in shown.stdout


def test_converge_snapshot_flag(
    converge_fleet: Callable[[int], BoxFleet], hetzner_emulator: Any, hcloud_client: Any
) -> None:
    box = converge_fleet(1)
    _servers(hcloud_client, ["box1"])
    env = fatctl_env(box.env, _cloud_env(hetzner_emulator), FATCTL_DOMAIN="fleet.example.net")
    done = _fatctl(env, "converge", "--all", "--snapshot", "--json")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.splitlines()[-1])
    (step,) = final["steps"]
    assert step["phase"] == "succeeded" and step["snapshot"].isdigit()
    (image,) = hcloud_client.images.get_all(type=["snapshot"], label_selector="kind=pre-converge")
    assert str(image.id) == step["snapshot"]
    assert hetzner_emulator.token not in done.stdout + done.stderr

    again = _fatctl(env, "converge", "--all", "--snapshot", "--json")
    assert again.returncode == 0, again.stderr
    (step,) = json.loads(again.stdout.splitlines()[-1])["steps"]
    assert (step["error"], step["snapshot"]) == ("unchanged", "")  # nothing to change: no image
    assert len(hcloud_client.images.get_all(type=["snapshot"])) == 1
