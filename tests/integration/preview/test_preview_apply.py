"""`fatctl preview` / `fatctl apply` with the hcloud engine against the Hetzner emulator: a fresh
fleet previews clean in one list call per kind, a changed spec shows the right row and exit 3,
apply resizes through power off / change type / power on (the emulator's actions say so), keeps
the disk, passes the gate, and the next preview is 0; a replacement is refused by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from fatctl.domain import RolloutPolicy
from fatctl.services.fleet.apply import ApplyRun, apply_fleet, guard
from fatctl.services.fleet.preview import FleetPreview, preview, select_specs
from tests.integration.preview.conftest import FLEET, cli_env, fatctl, provision_fleet
from tests.integration.provision.conftest import Plane


def set_agent(plane: Plane, name: str, **columns: str) -> None:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(plane.db) as session:
        agent = repo.get_agent(session, name)
        for key, value in columns.items():
            setattr(agent, key, value)
        session.add(agent)


def fleet_preview(plane: Plane, **select: Any) -> tuple[FleetPreview, list[Any]]:
    specs, failed = select_specs(plane.db, plane.settings, **select)
    return preview(plane.infra(), specs, failed), specs


def server_actions(plane: Plane, name: str) -> list[str]:
    server = plane.servers()[name]
    resp = requests.get(
        f"{plane.hetzner.url}/servers/{server['id']}/actions",
        params={"sort": "id", "per_page": "50"},
        headers={"Authorization": f"Bearer {plane.hetzner.token}"},
        timeout=10,
    )
    resp.raise_for_status()
    return [a["command"] for a in resp.json()["actions"] if a["status"] == "success"]


def test_fresh_fleet_is_clean_in_one_list_per_kind(fleet_plane: Plane, figure: Any) -> None:
    fleet_plane.hetzner.reset_stats()
    fleet, _ = fleet_preview(fleet_plane)
    assert [a.agent for a in fleet.agents] == list(FLEET)
    assert fleet.exit_code == 0 and not fleet.changes_pending, fleet.payload()
    calls = fleet_plane.hetzner.stats()["calls"]
    assert calls == {"GET /v1/servers": 1, "GET /v1/firewalls": 1, "GET /v1/primary_ips": 1,
                     "GET /v1/ssh_keys": 1}  # fmt: skip
    # The per-agent route would have cost four calls per agent.
    fleet_plane.hetzner.reset_stats()
    for name in FLEET:
        fleet_plane.infra().status(name)
    per_agent = fleet_plane.hetzner.stats()["total"]
    assert per_agent == 4 * len(FLEET)
    # Named agents: the same four calls, asking Hetzner for those agents only.
    fleet_plane.hetzner.reset_stats()
    specs, _ = select_specs(fleet_plane.db, fleet_plane.settings, names=["beta"])
    named = preview(fleet_plane.infra(), specs, whole_fleet=False)
    assert [a.agent for a in named.agents] == ["beta"] and named.exit_code == 0
    assert fleet_plane.hetzner.stats()["total"] == 4
    figure("preview API calls, 3 agents", 4)
    figure("per-agent lookups, 3 agents", per_agent)


def test_resize_previews_3_applies_through_power_cycle_then_0(fleet_plane: Plane) -> None:
    set_agent(fleet_plane, "beta", server_type="cx33")
    fleet, specs = fleet_preview(fleet_plane)
    assert fleet.exit_code == 3
    rows = {r["agent"]: r for r in fleet.payload()["agents"]}
    assert rows["beta"]["changes"] == [{"kind": "server", "name": "beta", "action": "update",
                                        "detail": "server_type cx23 -> cx33"}]  # fmt: skip
    assert rows["alpha"]["updates"] == rows["gamma"]["updates"] == 0
    assert not rows["beta"]["replaces_live_box"]

    gated: list[tuple[str, str, str]] = []

    def gate(agent: str) -> str | None:  # the box's state at Hetzner when the gate runs
        server = fleet_plane.servers()[agent]
        gated.append((agent, server["status"], server["server_type"]))
        return None

    guard(fleet, set())
    run = ApplyRun(fleet_plane.db, "test", lambda kind, **f: None,
                   lambda sink: _engine(fleet_plane, sink), gate, RolloutPolicy())  # fmt: skip
    report = apply_fleet(run, fleet, specs)
    assert report.state == "completed", report.rows()
    assert gated == [("beta", "running", "cx33")]
    beta = next(r for r in report.rows() if r["agent"] == "beta")
    assert beta["phase"] == "succeeded"
    assert "change_type cx23 -> cx33, disk kept" in beta["changes"]
    assert server_actions(fleet_plane, "beta")[-3:] == [
        "stop_server", "change_server_type", "start_server"
    ]  # fmt: skip
    assert "change_server_type" not in server_actions(fleet_plane, "alpha")
    again, _ = fleet_preview(fleet_plane)
    assert again.exit_code == 0, again.payload()


def _engine(plane: Plane, sink: Any) -> Any:
    from fatctl.infra.hcloud.engine import HcloudEngine
    from fatctl.pacing.timing import Timing

    return HcloudEngine(plane.settings, timing=Timing.instant(), on_change=sink,
                        sleep=lambda s: None)  # fmt: skip


def test_cli_preview_and_apply_labels_and_firewall(fleet_plane: Plane, tmp_path: Path) -> None:
    env = cli_env(fleet_plane, tmp_path)
    clean = fatctl(env, "preview", "--json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["changes_pending"] is False

    # The customer moves to BYOK (labels and backups change), and SSH opens to one network.
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(fleet_plane.db) as session:
        owner = repo.owner_of(session, repo.get_agent(session, "gamma"))
        owner.plan = "byok"
        session.add(owner)
    env["FATCTL_OPERATOR_CIDRS"] = "198.51.100.0/24"
    pending = fatctl(env, "preview", "--json")
    assert pending.returncode == 3, pending.stderr
    doc = json.loads(pending.stdout)
    rows = {r["agent"]: r for r in doc["agents"]}
    assert doc["changes_pending"] is True and doc["totals"]["with_changes"] == 3
    fw = {c["kind"]: c for c in rows["alpha"]["changes"]}
    assert list(fw) == ["firewall"] and fw["firewall"]["detail"] == "rules"
    gamma = {c["kind"]: c["detail"] for c in rows["gamma"]["changes"]}
    assert "labels" in gamma["server"] and "backups True -> False" in gamma["server"]

    table = fatctl(env, "preview")
    assert table.returncode == 3 and "\x1b" not in table.stdout
    assert "3 agents, 3 with changes, 0 replacing a live box, 0 failed (exit 3)" in table.stdout

    no_yes = fatctl(env, "apply", "--all")
    assert no_yes.returncode == 2 and no_yes.stderr.strip().splitlines() == [
        "fatctl: error: apply infra changes to 3 agent(s): alpha, beta, gamma: refusing "
        "without --yes (CI is set)"
    ]  # fmt: skip
    done = fatctl(env, "apply", "--all", "--yes", "--canary", "1", "--batch", "2", "--json")
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert all("ts" in e and e["ts"].endswith("+00:00") for e in lines[:-1])
    assert [e["agents"] for e in lines if e.get("event") == "wave.start"] == [
        ["alpha"], ["beta", "gamma"]
    ]  # fmt: skip
    assert lines[-1]["state"] == "completed"
    assert fleet_plane.servers()["gamma"]["labels"]["plan"] == "byok"
    assert fatctl(env, "preview").returncode == 0
    audit = fatctl(env, "audit", "--json")
    actions = [e["action"] for e in json.loads(audit.stdout)]
    assert actions.count("apply.agent") == 3 and "apply.end" in actions


def test_replacement_is_refused_unless_named(fleet_plane: Plane, tmp_path: Path) -> None:
    env = cli_env(fleet_plane, tmp_path)
    set_agent(fleet_plane, "alpha", location="hel1")
    shown = fatctl(env, "preview", "--agents", "alpha,beta")
    assert shown.returncode == 3
    alpha = next(line for line in shown.stdout.splitlines() if line.startswith("alpha"))
    assert "REPLACES LIVE BOX" in alpha and "location fsn1 -> hel1" in alpha

    dry = fatctl(env, "apply", "--agents", "alpha,beta", "--dry-run", "--json")
    assert dry.returncode == 3 and json.loads(dry.stdout)["totals"]["replacing_live_boxes"] == 1

    refused = fatctl(env, "apply", "--agents", "alpha,beta", "--yes")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "fatctl: error: apply would replace the live box of alpha: refused (review `fatctl "
        "preview`, then name each with --allow-replace AGENT)"
    ]  # fmt: skip
    assert refused.stdout == ""
    assert fleet_plane.servers()["alpha"]["location"] == "fsn1"
    # Named, the hcloud engine still never replaces a server: it says so, and nothing moves.
    named = fatctl(env, "apply", "--agents", "alpha", "--allow-replace", "alpha", "--yes")
    assert named.returncode == 1
    assert "replaces it; refused" in named.stdout and named.stderr.count("\n") == 1
    assert fleet_plane.servers()["alpha"]["location"] == "fsn1"


def test_bad_input_and_unknown_agents(fleet_plane: Plane, tmp_path: Path) -> None:
    env = cli_env(fleet_plane, tmp_path)
    for args, code, needle in (
        (("preview", "--all", "--agents", "alpha"), 2, "at most one of"),
        (("preview", "--label", "colour=red"), 2, "--label wants k=v"),
        (("preview", "--agents", "nobody"), 2, "no agent named nobody"),
        (("apply", "--agents", "alpha,nobody", "--yes"), 2, "no agent named nobody"),
        (("apply", "--yes"), 2, "apply needs --all"),
        (("apply", "--all", "--batch", "0"), 2, "--batch wants"),
        (("preview", "--engine", "terraform"), 2, "unknown engine"),
    ):
        proc = fatctl(env, *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == code and len(lines) == 1 and needle in lines[0], (args, proc)


def test_a_missing_setting_is_bad_input(fleet_plane: Plane, tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env(fleet_plane, tmp_path).items() if k != "HCLOUD_TOKEN"}
    for args in (("preview",), ("apply", "--all", "--yes")):
        proc = fatctl(env, *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (args, proc)
        assert "missing setting hcloud_token: set HCLOUD_TOKEN" in lines[0]


def test_hetzner_down_is_one_line_exit_1(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any
) -> None:
    from tests.integration.provision.conftest import make_plane

    plane = make_plane(tmp_path, hetzner_emulator, cloudflare_emulator)
    try:
        provision_fleet(plane, ("solo",))
        env = {**cli_env(plane, tmp_path), "FATCTL_API_RETRIES": "1"}
        hetzner_emulator.set_faults(error_rate=1.0, error_statuses=[503])
        proc = fatctl(env, "preview")
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fatctl: error: Hetzner API"), lines
    finally:
        hetzner_emulator.clear_faults()
        plane.db.dispose()


def test_cli_resize_of_a_box_that_does_not_come_back_halts(
    fleet_plane: Plane, tmp_path: Path
) -> None:
    """The resize happens, then the gate finds no SSH: unreachable, halted, exit 1, one line."""
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    set_agent(fleet_plane, "beta", server_type="cx33", ipv4="127.0.0.1")
    env = {**cli_env(fleet_plane, tmp_path), "FATCTL_SSH_PORT": str(port)}
    proc = fatctl(env, "apply", "--agents", "beta", "--yes", "--health-timeout", "2", "--json")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.strip().splitlines() == [
        "fatctl: error: apply halted: beta failed (failures exceed policy after wave 0)"
    ]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    steps = [e["step"] for e in lines if e.get("event") == "apply.step"]
    assert steps == ["power_off", "change_type", "power_on", "health_gate"]
    (row,) = lines[-1]["agents"]
    assert row["phase"] == "unreachable" and "did not come back on SSH" in row["error"]
    server = fleet_plane.servers()["beta"]
    assert server["server_type"] == "cx33" and server["status"] == "running"
