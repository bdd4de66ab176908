"""`converge` over real SSH on real sshd hosts whose `box/fs` holds the agents' rendered files.

The configuration change is a real one: the fleet's domain moves, so the Caddyfile and the
gateway's config are re-rendered. The breaking change is a template tree whose openclaw.json
gives the port as a string, which the harness gateway (like OpenClaw) refuses to start with.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlmodel import col, func, select

from fatctl.domain import RolloutPolicy
from fatctl.pacing.poll import Poll
from fatctl.services.converge import job as converge
from fatctl.services.rollout import engine as rollout
from fatctl.state.db import session_scope
from fatctl.state.models import RolloutStep
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.rollout import harness
from tests.integration.rollout.conftest import BoxFleet
from tests.integration.rollout.harness import OLD

CADDY = "/etc/caddy/Caddyfile"
CONFIG = "/etc/openclaw/openclaw.json"
NEW_DOMAIN = "fleet.example.net"
SECRET = "sk-live-do-not-show-4242"


def _run(box: BoxFleet, seen: list[tuple[str, dict[str, Any]]], domain: str) -> rollout.Run:
    settings = replace(box.fleet.settings, domain=domain)
    run = rollout.Run(
        box.fleet.engine,
        settings,
        box.layout,
        "test@ci",
        lambda kind, **f: seen.append((kind, f)),
        poll=Poll(0.2),
    )
    assert box.files is not None
    run.files = box.files
    return run


def _fatctl(
    box: BoxFleet, *args: str, domain: str = NEW_DOMAIN
) -> subprocess.CompletedProcess[str]:
    env = fatctl_env(box.env, FATCTL_DOMAIN=domain)
    return run_fatctl(*args, env=env, timeout=120)


def _healthy(box: BoxFleet) -> dict[str, bool]:
    from fatctl.remote.commands.upgrade import health
    from fatctl.remote.fanout import fan_out

    return {r.name: r.ok for r in fan_out([h.target() for h in box.hosts], health(box.layout))}


def _broken_templates(tmp: Path) -> Path:
    import templates

    tree = tmp / "templates"
    shutil.copytree(Path(templates.__file__).parent, tree)
    (tree / "etc" / "openclaw.json.j2").write_text(
        "{{ openclaw_config | tojson(indent=2) | replace('18789', '\"18789\"') }}\n"
    )
    return tree


def test_dry_run_shows_the_diff_and_writes_nothing(
    converge_fleet: Callable[[int], BoxFleet],
) -> None:
    box = converge_fleet(2)
    for host in box.hosts:  # a secret on the box: converge must never read or show it
        env_file = host.home(host.identity.operator) / "box" / "fs" / "etc/openclaw/gateway.env"
        env_file.write_text(f"OPENCLAW_GATEWAY_TOKEN={SECRET}\n")
    before = {h.name: harness.box_file(h, CADDY) for h in box.hosts}

    same = _fatctl(box, "converge", "--all", "--dry-run", "--json", domain="")
    assert same.returncode == 0, same.stderr
    assert [(b["agent"], b["changed"], b["added"]) for b in json.loads(same.stdout)] == [
        ("box1", [], []),
        ("box2", [], []),
    ]
    dry = _fatctl(box, "converge", "--all", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "=== box1" in dry.stdout and "=== box2" in dry.stdout
    assert f"+box1.{NEW_DOMAIN} {{" in dry.stdout and "-box1.agents.invalid {" in dry.stdout
    assert f"+++ {CADDY} (rendered)" in dry.stdout
    assert SECRET not in dry.stdout + dry.stderr and "gateway.env" not in dry.stdout
    as_json = json.loads(_fatctl(box, "converge", "--all", "--dry-run", "--json").stdout)
    assert as_json[0]["changed"] == [CADDY, CONFIG] and as_json[0]["added"] == []
    assert f"https://box1.{NEW_DOMAIN}" in as_json[0]["diff"]
    for host in box.hosts:
        assert harness.box_file(host, CADDY) == before[host.name]
        assert harness.events(host) == [f"start {OLD}"]
    assert _fatctl(box, "rollout", "show", "1").returncode == 1  # nothing recorded


def test_good_change_rolls_across_and_abort_restores(
    converge_fleet: Callable[[int], BoxFleet],
) -> None:
    box = converge_fleet(3)
    seen: list[tuple[str, dict[str, Any]]] = []
    policy = RolloutPolicy(canary=1, batch=2, health_timeout_s=10)
    targets = [h.target() for h in box.hosts]
    old_caddy = harness.box_file(box.hosts[0], CADDY)
    report = converge.start(_run(box, seen, NEW_DOMAIN), targets, policy)

    assert report.state == "completed", report.rows
    assert {r["phase"] for r in report.rows} == {"succeeded"}
    assert all(r["from"] != r["to"] for r in report.rows)
    assert all("does not resolve" in r["error"] for r in report.rows)  # HTTPS skip recorded
    assert [f["hosts"] for k, f in seen if k == "wave.start"] == [["box1"], ["box2", "box3"]]
    for host in box.hosts:
        assert f"box{host.index}.{NEW_DOMAIN} {{" in harness.box_file(host, CADDY)
        assert json.loads(harness.box_file(host, CONFIG))["gateway"]["controlUi"][
            "allowedOrigins"
        ] == [f"https://{host.name}.{NEW_DOMAIN}"]
        # Only what the change affects: no daemon-reload (no unit changed), one gateway restart.
        assert harness.events(host) == [
            f"start {OLD}",
            "restart openclaw-gateway.service",
            f"start {OLD}",
            "reload-or-restart caddy.service",
        ]
    again = converge.start(_run(box, seen, NEW_DOMAIN), targets, policy)
    assert again.state == "completed" and {r["error"] for r in again.rows} == {"unchanged"}
    assert len(harness.events(box.hosts[0])) == 4  # an unchanged box is not touched

    undone = rollout.abort(_run(box, seen, NEW_DOMAIN), report.rollout_id)
    assert undone.state == "aborted"
    assert {r["phase"] for r in undone.rows} == {"rolled_back"}
    assert harness.box_file(box.hosts[0], CADDY) == old_caddy
    assert set(_healthy(box).values()) == {True}


def test_breaking_change_stops_at_the_canary_and_rolls_it_back(
    converge_fleet: Callable[[int], BoxFleet], tmp_path: Path
) -> None:
    box = converge_fleet(3)
    tree = _broken_templates(tmp_path)
    before = {h.name: harness.box_file(h, CONFIG) for h in box.hosts}
    proc = _fatctl(
        box, "converge", "--all", "--templates", str(tree), "--batch", "2",
        "--health-timeout", "3", "--json", domain="",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert lines, proc.stderr
    assert [e["event"] for e in lines if "event" in e] == [
        "rollout.start", "wave.start", "host.done", "rollout.halted",
    ]  # fmt: skip
    steps = {s["agent"]: s for s in lines[-1]["steps"]}
    assert steps["box1"]["phase"] == "rolled_back"
    assert "health gate failed" in steps["box1"]["error"]
    assert steps["box2"]["phase"] == steps["box3"]["phase"] == "pending"
    canary, *others = box.hosts
    assert harness.box_file(canary, CONFIG) == before[canary.name]
    assert harness.events(canary) == [
        f"start {OLD}",
        "restart openclaw-gateway.service",
        f"start {OLD}",  # the bad config: the gateway exits at once
        "restart openclaw-gateway.service",
        f"start {OLD}",  # the restored config
    ]
    assert _healthy(box)[canary.name]
    for host in others:
        assert harness.events(host) == [f"start {OLD}"]
        assert harness.box_file(host, CONFIG) == before[host.name]
    shown = json.loads(_fatctl(box, "rollout", "show", "1", "--json").stdout)
    assert shown["state"] == "halted" and shown["target"].startswith("config:")


def _succeeded(box: BoxFleet) -> int:
    with session_scope(box.fleet.engine) as session:
        query = select(func.count()).where(col(RolloutStep.phase) == "succeeded")
        return int(session.exec(query).one())


def test_killed_converge_resumes_without_touching_a_box_twice(
    converge_fleet: Callable[[int], BoxFleet],
) -> None:
    box = converge_fleet(4)
    args = ["converge", "--all", "--canary", "1", "--batch", "1", "--json"]
    env = {**box.env, "FATCTL_DOMAIN": NEW_DOMAIN}
    code = harness.run_until_killed(args, env, lambda: _succeeded(box) >= 2)
    assert code == -signal.SIGKILL, "the kill must land before the rollout ends"
    assert 2 <= _succeeded(box) < 4

    resumed = _fatctl(box, "rollout", "resume", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr
    final = [json.loads(line) for line in resumed.stdout.splitlines()][-1]
    assert final["state"] == "completed"
    assert {s["phase"] for s in final["steps"]} == {"succeeded"}
    for host in box.hosts:
        log = harness.events(host)
        assert log.count("restart openclaw-gateway.service") == 1, (host.name, log)
        assert log.count("reload-or-restart caddy.service") == 1, (host.name, log)
        assert f"box{host.index}.{NEW_DOMAIN} {{" in harness.box_file(host, CADDY)


def test_resume_never_applies_a_configuration_other_than_the_recorded_one(
    converge_fleet: Callable[[int], BoxFleet],
) -> None:
    """A converge killed inside box1's step (files written, services not yet told), resumed
    after the fleet's configuration moved again: box1 goes back to its files, nothing else."""
    from fatctl.remote.commands import converge as cmd
    from fatctl.remote.fanout import fan_out
    from fatctl.services.converge import diff as converge_diff
    from fatctl.services.rollout import records as rollout_records
    from fatctl.services.rollout.plan import plan_waves

    box = converge_fleet(2)
    assert box.files is not None
    seen: list[tuple[str, dict[str, Any]]] = []
    run = _run(box, seen, NEW_DOMAIN)
    wanted = {h.name: converge.render_for(run, h.name, "templates") for h in box.hosts}
    policy = RolloutPolicy(canary=1, batch=1, health_timeout_s=10)
    rollout_id = rollout_records.create(
        box.fleet.engine,
        kind="converge",
        version="config:test",
        policy=policy,
        waves=plan_waves([h.name for h in box.hosts], policy),
        actor="test@ci",
        per_host={n: converge_diff.digest(f) for n, f in wanted.items()},
    )
    canary = box.hosts[0]
    before = harness.box_file(canary, CADDY)
    (backed,) = fan_out([canary.target()], cmd.backup(box.files, rollout_id, [CADDY]))
    assert backed.ok, backed.as_dict()
    new = wanted[canary.name][CADDY]
    write = cmd.write_file(box.files, CADDY, new.mode, new.owner)
    (written,) = fan_out([canary.target()], write, stdin=new.content.encode())
    assert written.ok and harness.box_file(canary, CADDY) != before
    _, steps = rollout_records.load(box.fleet.engine, rollout_id)
    assert steps[0][0].id is not None
    rollout_records.update_step(box.fleet.engine, steps[0][0].id, phase="running")

    report = rollout.resume(_run(box, seen, "elsewhere.example.net"), rollout_id)
    assert report.state == "halted"
    row = report.rows[0]
    assert row["phase"] == "rolled_back" and "changed since rollout" in row["error"]
    assert harness.box_file(canary, CADDY) == before
    assert report.rows[1]["phase"] == "pending"
    assert harness.events(box.hosts[1]) == [f"start {OLD}"]
    assert _healthy(box)[canary.name]
