"""What one provision costs at the emulators' APIs (issue 5: <= 10 Hetzner and 3 Cloudflare
calls per provision, action polls excluded), pinned call by call so an added call fails a test;
in one process and in fresh CLI processes (fleet key ids and the zone id come from the database
or the settings, not from lookups); and that the lookup-free fresh path still adopts, never
duplicates, whatever an earlier run left behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from fatctl.services.provision.flow import provision
from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.fixtures.sshd import keygen
from tests.integration.provision.test_provision_flow import opts, request

# Every call a fresh agent's box costs at Hetzner, and nothing else: firewall, two primary IPs
# and their protection, the server, its backups and protection, two PTRs.
FRESH_HETZNER = {
    "POST /v1/firewalls": 1,
    "POST /v1/primary_ips": 2,
    "POST /v1/primary_ips/{id}/actions/change_protection": 2,
    "POST /v1/servers": 1,
    "POST /v1/servers/{id}/actions/enable_backup": 1,
    "POST /v1/servers/{id}/actions/change_protection": 1,
    "POST /v1/servers/{id}/actions/change_dns_ptr": 2,
}
# One listing of the name's records (to adopt, and to refuse foreign ones) and two creates.
FRESH_CLOUDFLARE = {
    "GET /client/v4/zones/{id}/dns_records": 1,
    "POST /client/v4/zones/{id}/dns_records": 2,
}


def api_calls(emulator: Any) -> dict[str, int]:
    calls = emulator.stats()["calls"]
    return {k: n for k, n in calls.items() if not (k.startswith("GET ") and "/actions/" in k)}


def reset(*emulators: Any) -> None:
    for emulator in emulators:
        emulator.reset_stats()


def run(plane: Any, name: str) -> Any:
    return provision(plane.db, plane.ring, plane.settings, plane.infra(), request(name), "t",
                     opts())  # fmt: skip


def test_fresh_agent_costs_ten_hetzner_and_three_cloudflare_calls(plane: Any) -> None:
    assert sum(FRESH_HETZNER.values()) == 10 and sum(FRESH_CLOUDFLARE.values()) == 3
    run(plane, "first")  # uploads the new fleet key (no listing first); finds the zone once
    first_hz, first_cf = api_calls(plane.hetzner), api_calls(plane.cloudflare)
    assert first_hz == {**FRESH_HETZNER, "POST /v1/ssh_keys": 1}, first_hz
    assert first_cf == {**FRESH_CLOUDFLARE, "GET /client/v4/zones": 1}, first_cf
    reset(plane.hetzner, plane.cloudflare)
    done = run(plane, "second")
    assert api_calls(plane.hetzner) == FRESH_HETZNER
    assert api_calls(plane.cloudflare) == FRESH_CLOUDFLARE
    # Fewer calls, same box: protected, backed up, kept IPs with our PTR, inside its firewall.
    server = plane.servers()["second"]
    assert str(server["id"]) == done.server_id
    assert server["protection"] == {"delete": True, "rebuild": True} and server["backup_window"]
    ips = [ip for ip in plane.primary_ips() if ip["name"].startswith("second")]
    assert len(ips) == 2
    for ip in ips:
        assert ip["protection"]["delete"] and not ip["auto_delete"]
        assert ip["dns_ptr"][0]["dns_ptr"] == "second.sandbox.test"
        assert ip["assignee_id"] == server["id"]
    fws = [fw for fw in plane.hetzner.inventory()["firewalls"] if fw["labels"]["agent"] == "second"]
    assert [a["server"]["id"] for a in fws[0]["applied_to"]] == [server["id"]]
    key_ids = {str(k["id"]) for k in plane.hetzner.inventory()["ssh_keys"]}
    assert set(recorded_key_ids(plane)) == key_ids  # what the next process is seeded with


def recorded_key_ids(plane: Any) -> list[str]:
    """The Hetzner ids the database recorded for the fleet keys."""
    from sqlmodel import select

    from fatctl.state.models import HcloudKeyId

    with session_scope(plane.db) as session:
        return [k.hcloud_id for k in session.exec(select(HcloudKeyId)).all()]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, timeout=300, check=0)


def cli_env(tmp_path: Path, hetzner: Any, cloudflare: Any) -> dict[str, str]:
    from fatctl.secrets import generate_master_key

    return fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path / "cli"), FATCTL_MASTER_KEY=generate_master_key(),
        HCLOUD_TOKEN=hetzner.token, HCLOUD_ENDPOINT=hetzner.url, CLOUDFLARE_API_TOKEN=
        cloudflare.token, CLOUDFLARE_BASE_URL=cloudflare.url, FATCTL_DOMAIN="sandbox.test",
        FATCTL_ENGINE="hcloud", FATCTL_POLL_INTERVAL="0.02",
    )  # fmt: skip


def cli_provision(
    env: dict[str, str], name: str, hetzner: Any, cloudflare: Any
) -> tuple[dict[str, int], dict[str, int]]:
    reset(hetzner, cloudflare)
    out = cli(env, "provision", name, "--owner", f"{name}@example.com", "--no-box", "--json")
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["event"] == "provision.result" and result["ipv4"], out.stdout
    return api_calls(hetzner), api_calls(cloudflare)


def test_fresh_cli_process_costs_ten_hetzner_and_three_cloudflare_calls(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any
) -> None:
    """One `fatctl provision` process per agent, as operators run it: nothing is cached in
    memory, so the fleet key ids come from the database, the zone id from CLOUDFLARE_ZONE_ID
    (as `fatctl sandbox up` writes it) or from the records the database already keeps."""
    hz, cf = hetzner_emulator, cloudflare_emulator
    env = cli_env(tmp_path, hz, cf)
    cli(env, "db", "upgrade")
    keygen(tmp_path / "op", "operator@test")  # writes op.pub
    added = cli(env, "keys", "add", "--operator", "--file", str(tmp_path / "op.pub"), "--json")
    # `keys add` uploads the fleet key at once, so not even the first provision pays for it.
    assert json.loads(added.stdout)["hetzner_id"] == str(hz.inventory()["ssh_keys"][0]["id"])
    zoned = {**env, "CLOUDFLARE_ZONE_ID": cf.zone_id("sandbox.test")}
    assert cli_provision(zoned, "cli-one", hz, cf) == (FRESH_HETZNER, FRESH_CLOUDFLARE)
    # A fresh process without the setting: key ids and the zone from the database.
    assert cli_provision(env, "cli-two", hz, cf) == (FRESH_HETZNER, FRESH_CLOUDFLARE)
    inv = hz.inventory()
    assert len(inv["ssh_keys"]) == 1 and len(inv["servers"]) == 2
    assert len(inv["primary_ips"]) == 4 and len(cf.records()) == 4


def forget_infra(plane: Any, name: str) -> None:
    """As if the run died after Hetzner made everything but before the database heard of it."""
    with session_scope(plane.db) as session:
        agent = repo.get_agent(session, name)
        agent.server_id = agent.primary_ipv4_id = agent.primary_ipv6_id = ""
        agent.last_step, agent.last_error = "render", ""
        session.add(agent)


def test_fresh_path_adopts_what_a_lost_run_made(plane: Any) -> None:
    done = run(plane, "lost")
    before = plane.hetzner.inventory()
    forget_infra(plane, "lost")
    plane.hetzner.reset_stats()
    again = run(plane, "lost")
    after = plane.hetzner.inventory()
    assert again.server_id == done.server_id and again.ipv4 == done.ipv4
    for kind in ("servers", "primary_ips", "firewalls", "ssh_keys"):
        assert len(after[kind]) == len(before[kind]), kind
    calls = plane.hetzner.stats()["calls"]
    # The optimistic firewall create hit the taken name; the adopt path then looked things up.
    assert calls.get("POST /v1/firewalls") == 1 and calls.get("GET /v1/servers")
    assert "POST /v1/primary_ips" not in calls and "POST /v1/servers" not in calls


def test_fresh_path_recovers_from_a_deleted_fleet_key(plane: Any, monkeypatch: Any) -> None:
    """A key whose id the database recorded is gone: the server create fails before anything
    duplicates, the adopt path keeps the firewall and IPs just made, uploads the key again and
    the database records its new id."""
    from fatctl.infra.hcloud import keys as hcloud_keys

    run(plane, "keyed")
    old_ids = recorded_key_ids(plane)
    for key in plane.hetzner.inventory()["ssh_keys"]:
        plane.infra().h.client.ssh_keys.get_by_id(key["id"]).delete()
    monkeypatch.setattr(hcloud_keys, "_ENSURED", {})  # a fresh process: ids from the database
    plane.hetzner.reset_stats()
    done = run(plane, "rekeyed")
    calls = plane.hetzner.stats()["calls"]
    assert calls.get("POST /v1/servers") == 2 and calls.get("POST /v1/ssh_keys") == 1, calls
    assert calls.get("POST /v1/firewalls") == 1 and calls.get("POST /v1/primary_ips") == 2
    inv = plane.hetzner.inventory()
    assert len(inv["ssh_keys"]) >= 1
    assert str(plane.servers()["rekeyed"]["id"]) == done.server_id
    assert len([ip for ip in inv["primary_ips"] if ip["name"].startswith("rekeyed")]) == 2
    assert len([fw for fw in inv["firewalls"] if fw["labels"]["agent"] == "rekeyed"]) == 1
    new_ids = recorded_key_ids(plane)
    assert new_ids == [str(k["id"]) for k in inv["ssh_keys"]] and new_ids != old_ids


def test_key_added_while_hetzner_is_down_is_kept_and_uploaded_by_the_next_provision(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any
) -> None:
    hz, cf = hetzner_emulator, cloudflare_emulator
    env = cli_env(tmp_path, hz, cf)
    cli(env, "db", "upgrade")
    keygen(tmp_path / "op", "operator@test")
    down = {**env, "HCLOUD_ENDPOINT": "http://127.0.0.1:9/v1"}  # nothing listens on port 9
    added = cli(down, "keys", "add", "--operator", "--file", str(tmp_path / "op.pub"), "--json")
    assert json.loads(added.stdout)["hetzner_id"] == ""
    warning = [line for line in added.stderr.splitlines() if line.strip()]
    assert len(warning) == 1 and warning[0].startswith("fatctl: warning: key recorded"), warning
    assert hz.inventory()["ssh_keys"] == []
    assert cli_provision(env, "late-key", hz, cf)[0] == {**FRESH_HETZNER, "POST /v1/ssh_keys": 1}
