"""`fatctl reconcile` as operators run it (real CLI subprocesses) against the API emulators:
orphans and drift made directly in the emulators behind fatctl's back are reported (exit 1);
`--fix` repairs the safe ones (checked in the emulators' inventories and the audit log) and
lists the rest (exit 1); once a person has dealt with those, the fleet is clean (exit 0).

No boxes here (`--no-health`): box health is covered by test_reconcile_health.py on real sshd.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from fatctl.dns.records import ownership_comment
from fatctl.services.provision.flow import provision
from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.provision.test_provision_flow import opts, request

GHOST_IP = "203.0.113.9"
ELSEWHERE = "203.0.113.66"


def cli_env(plane: Any) -> dict[str, str]:
    s = plane.settings
    return fatctl_env(
        FATCTL_DATA_DIR=str(s.data_dir), FATCTL_DATABASE_URL=s.database_url,
        HCLOUD_TOKEN=s.hcloud_token.reveal(), HCLOUD_ENDPOINT=s.hcloud_endpoint,
        CLOUDFLARE_API_TOKEN=s.cloudflare_api_token.reveal(),
        CLOUDFLARE_BASE_URL=s.cloudflare_base_url, FATCTL_DOMAIN=s.domain,
        FATCTL_ENGINE="hcloud", FATCTL_POLL_INTERVAL="0", FATCTL_API_RETRIES="3",
        FATCTL_ACTOR="reconcile-test",
    )  # fmt: skip


def fatctl(env: dict[str, str], *args: str, code: int) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, timeout=300, check=code)


def report(env: dict[str, str], *args: str, code: int) -> dict[str, Any]:
    doc = json.loads(fatctl(env, "reconcile", "--no-health", "--json", *args, code=code).stdout)
    assert isinstance(doc, dict)
    assert doc.pop("not_checked") == ["box health (--no-health)"]
    return doc


def brief(doc: dict[str, Any]) -> set[tuple[str, str, str, bool]]:
    return {(f["kind"], f["resource"].split(" (")[0], f["agent"], f["fixable"])
            for f in doc["findings"]}  # fmt: skip


def fleet(plane: Any, *names: str) -> dict[str, Any]:
    for name in names:
        provision(plane.db, plane.ring, plane.settings, plane.infra(), request(name), "t", opts())
    with session_scope(plane.db) as session:  # one agent all the way to ready
        agent = repo.get_agent(session, names[0])
        agent.state, agent.last_step = "ready", "ready"
        session.add(agent)
    return plane.servers()


def cf_records(plane: Any, name: str, rtype: str) -> list[dict[str, Any]]:
    return [r for r in plane.cloudflare.records() if r["name"] == name and r["type"] == rtype]


def resize(hcloud_client: Any, server_id: int, server_type: str) -> None:
    from hcloud.server_types import ServerType

    server = hcloud_client.servers.get_by_id(server_id)
    server.power_off().wait_until_finished()
    server.change_type(ServerType(name=server_type), upgrade_disk=False).wait_until_finished()
    server.power_on().wait_until_finished()


def behind_our_back(plane: Any, hcloud_client: Any, cloudflare_client: Any) -> tuple[str, str]:
    """Orphans and drift made straight in the emulators; returns the orphan server's and
    firewall's ids."""
    from hcloud.images import Image
    from hcloud.locations import Location
    from hcloud.server_types import ServerType

    fw = hcloud_client.firewalls.create(
        name="fatctl-ghost", labels={"managed-by": "fatctl", "agent": "ghost"}
    ).firewall  # protects nothing: safe to delete
    ghost = hcloud_client.servers.create(
        name="ghost", server_type=ServerType(name="cx23"), image=Image(name="debian-12"),
        location=Location(name="fsn1"), labels={"managed-by": "fatctl", "agent": "ghost"},
    ).server  # fmt: skip
    zone = plane.cloudflare.zone_id("sandbox.test")
    records = cloudflare_client.dns.records
    records.create(zone_id=zone, name="ghost.sandbox.test", type="A", content=GHOST_IP, ttl=1,
                   comment=ownership_comment("ghost"))  # fmt: skip
    records.delete(cf_records(plane, "alpha.sandbox.test", "A")[0]["id"], zone_id=zone)
    beta_a = cf_records(plane, "beta.sandbox.test", "A")[0]
    records.edit(beta_a["id"], zone_id=zone, name=beta_a["name"], type="A", ttl=1,
                 content=ELSEWHERE)  # fmt: skip
    gamma = plane.servers()["gamma"]
    resize(hcloud_client, gamma["id"], "cx33")
    hcloud_client.servers.get_by_id(gamma["id"]).update(labels={"managed-by": "fatctl",
                                                                "agent": "gamma"})  # fmt: skip
    return str(ghost.id), str(fw.id)


def test_reconcile_reports_then_fixes_the_safe_findings(
    plane: Any, hcloud_client: Any, cloudflare_client: Any, figure: Any
) -> None:
    servers = fleet(plane, "alpha", "beta", "gamma")
    env = cli_env(plane)
    assert report(env, code=0) == {"clean": True, "findings": [], "fixes": []}
    ghost_id, fw_id = behind_our_back(plane, hcloud_client, cloudflare_client)

    plane.hetzner.reset_stats()
    plane.cloudflare.reset_stats()
    before = report(env, code=1)
    hz = sum(plane.hetzner.stats()["calls"].values())
    cf = sum(plane.cloudflare.stats()["calls"].values())
    figure("reconcile API calls (3 agents + orphans)", f"{hz} Hetzner + {cf} Cloudflare")
    assert hz <= 3 and cf <= 2, (plane.hetzner.stats()["calls"], plane.cloudflare.stats()["calls"])
    assert brief(before) == {
        ("orphan", f"server {ghost_id}", "ghost", False),
        ("orphan", "dns A ghost.sandbox.test", "ghost", True),
        ("orphan", f"firewall {fw_id}", "ghost", True),
        ("missing", "dns A alpha.sandbox.test", "alpha", True),
        ("drift", "dns A beta.sandbox.test", "beta", True),
        ("drift", f"server {servers['gamma']['id']}", "gamma", False),  # type cx33
        ("drift", f"server {servers['gamma']['id']}", "gamma", True),  # labels
    }, before
    drift = {f["detail"] for f in before["findings"] if f["agent"] == "gamma"}
    assert "type cx33, database says cx23" in drift
    assert any(d.startswith("labels differ: ") and "plan=managed" in d for d in drift)
    orphan = next(f for f in before["findings"] if f["resource"].startswith("server"))
    assert f"hcloud server delete {ghost_id}" in orphan["advice"]
    assert cf_records(plane, "ghost.sandbox.test", "A")  # nothing changed without --fix

    fixed = report(env, "--fix", code=1)
    assert sorted((f["agent"], f["action"], f["result"]) for f in fixed["fixes"]) == [
        ("alpha", "dns.upsert", "ok"), ("beta", "dns.upsert", "ok"),
        ("gamma", "server.relabel", "ok"), ("ghost", "dns.delete", "ok"),
        ("ghost", "firewall.delete", "ok"),
    ]  # fmt: skip
    assert brief(fixed) == {
        ("orphan", f"server {ghost_id}", "ghost", False),
        ("drift", f"server {servers['gamma']['id']}", "gamma", False),
    }, fixed
    # The emulators' inventories: repaired exactly as recorded, nothing else touched.
    agents = {a: agent_row(plane, a) for a in ("alpha", "beta")}
    assert cf_records(plane, "ghost.sandbox.test", "A") == []
    fws = {fw["name"] for fw in plane.hetzner.inventory()["firewalls"]}
    assert "fatctl-ghost" not in fws and {"fatctl-alpha", "fatctl-beta", "fatctl-gamma"} <= fws
    assert [r["content"] for r in cf_records(plane, "alpha.sandbox.test", "A")] == [
        agents["alpha"].ipv4
    ]  # fmt: skip
    assert [r["content"] for r in cf_records(plane, "beta.sandbox.test", "A")] == [
        agents["beta"].ipv4
    ]  # fmt: skip
    assert plane.servers()["gamma"]["labels"]["plan"] == "managed"
    assert plane.servers()["gamma"]["server_type"] == "cx33"  # never resized by --fix
    assert "ghost" in plane.servers()  # never deleted by --fix
    trail = audit(plane, "reconcile.fix")
    assert sorted((e.target, e.result) for e in trail) == [
        ("alpha", "ok"), ("beta", "ok"), ("fleet", "ok"), ("fleet", "ok"), ("gamma", "ok")
    ]  # fmt: skip

    # A person deals with the rest; then the fleet is clean again.
    hcloud_client.servers.get_by_id(int(ghost_id)).delete().wait_until_finished()
    resize(hcloud_client, servers["gamma"]["id"], "cx23")
    assert report(env, "--fix", code=0) == {"clean": True, "findings": [], "fixes": []}


def agent_row(plane: Any, name: str) -> Any:
    with session_scope(plane.db) as session:
        agent = repo.get_agent(session, name)
        session.expunge(agent)
        return agent


def audit(plane: Any, action: str) -> list[Any]:
    with session_scope(plane.db) as session:
        events = [e for e in repo.audit_trail(session, limit=1000) if e.action == action]
        for e in events:
            session.expunge(e)
        return events


def test_read_only_run_writes_nothing_and_people_get_a_table(
    plane: Any, cloudflare_client: Any
) -> None:
    fleet(plane, "alpha")
    env = cli_env(plane)
    zone = plane.cloudflare.zone_id("sandbox.test")
    rec = cf_records(plane, "alpha.sandbox.test", "AAAA")[0]
    cloudflare_client.dns.records.delete(rec["id"], zone_id=zone)
    out = fatctl(env, "reconcile", "--no-health", code=1).stdout
    assert "dns AAAA alpha.sandbox.test" in out and "--fix: dns.upsert" in out
    assert "1 findings, 0 need a person; 1 repairable with --fix" in out
    assert audit(plane, "reconcile.fix") == []
    assert cf_records(plane, "alpha.sandbox.test", "AAAA") == []


def test_selection_and_bad_input(plane: Any, hcloud_client: Any) -> None:
    fleet(plane, "alpha", "beta")
    env = cli_env(plane)
    beta = plane.servers()["beta"]["id"]
    resize(hcloud_client, beta, "cx33")
    assert brief(report(env, "--agents", "alpha", code=0)) == set()
    assert {f["agent"] for f in report(env, "--agents", "beta", code=1)["findings"]} == {"beta"}
    assert report(env, "--label", "state=ready", code=0)["clean"]  # alpha is the ready one
    for bad in (("--label", "colour=blue"), ("--agents", "a", "--all")):
        proc = fatctl(env, "reconcile", "--no-health", *bad, code=2)
        assert proc.stderr.startswith("fatctl: error: ") and proc.stderr.count("\n") == 1
    missing = fatctl(env, "reconcile", "--no-health", "--agents", "nobody", code=2)
    assert "no agent named nobody" in missing.stderr


@pytest.mark.parametrize("status", [500, 503])
def test_cloud_failure_is_one_line_not_a_report(plane: Any, status: int) -> None:
    fleet(plane, "alpha")
    plane.hetzner.set_faults(error_rate=1.0, error_statuses=[status])
    env = {**cli_env(plane), "FATCTL_API_RETRIES": "1"}  # one attempt: fail fast
    proc = fatctl(env, "reconcile", "--no-health", code=1)
    assert proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "gave up after retries" in proc.stderr


def test_a_cloud_it_could_not_look_at_is_not_clean(plane: Any) -> None:
    """Without a token reconcile compares nothing with that cloud: it says so, and does not
    call the fleet clean (exit 1). `--no-health` is the operator's choice and does not count."""
    fleet(plane, "alpha")
    without = {k: v for k, v in cli_env(plane).items() if k != "HCLOUD_TOKEN"}
    doc = json.loads(fatctl(without, "reconcile", "--no-health", "--json", code=1).stdout)
    assert doc == {"clean": False, "findings": [], "fixes": [], "not_checked": [
        "Hetzner (HCLOUD_TOKEN unset)", "box health (--no-health)"]}  # fmt: skip
    bare = {k: v for k, v in without.items() if k != "CLOUDFLARE_API_TOKEN"}
    out = fatctl(bare, "reconcile", "--no-health", code=1).stdout
    assert "reconcile: clean" not in out
    assert "reconcile: not clean: could not check Hetzner (HCLOUD_TOKEN unset), Cloudflare" in out
