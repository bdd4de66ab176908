"""What one provision costs at the emulators' APIs (issue 5: <= 10 Hetzner and 3 Cloudflare
calls for a fresh agent, action polls excluded), and that the lookup-free fresh path still
adopts, never duplicates, whatever an earlier run left behind."""

from __future__ import annotations

from typing import Any

from fatctl.services.provision import provision
from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.integration.provision.test_provision_flow import opts, request


def api_calls(emulator: Any) -> dict[str, int]:
    calls = emulator.stats()["calls"]
    return {k: n for k, n in calls.items() if not (k.startswith("GET ") and "/actions/" in k)}


def run(plane: Any, name: str) -> Any:
    return provision(plane.db, plane.ring, plane.settings, plane.infra(), request(name), "t",
                     opts())  # fmt: skip


def test_fresh_agent_costs_ten_hetzner_and_three_cloudflare_calls(plane: Any) -> None:
    run(plane, "first")  # the first of the process also finds the zone and ensures fleet keys
    first_hz, first_cf = api_calls(plane.hetzner), api_calls(plane.cloudflare)
    assert first_hz.get("GET /v1/ssh_keys") == 1 and first_cf.get("GET /client/v4/zones") == 1
    assert sum(first_hz.values()) <= 12 and sum(first_cf.values()) == 4, (first_hz, first_cf)
    plane.hetzner.reset_stats()
    plane.cloudflare.reset_stats()
    done = run(plane, "second")
    hz, cf = api_calls(plane.hetzner), api_calls(plane.cloudflare)
    assert sum(hz.values()) == 10, hz
    assert not [k for k in hz if k.startswith("GET ")], hz  # no lookups at all
    assert cf == {
        "GET /client/v4/zones/{id}/dns_records": 1,
        "POST /client/v4/zones/{id}/dns_records": 2,
    }
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


def test_fresh_path_recovers_from_a_deleted_fleet_key(plane: Any) -> None:
    """A key this process cached is gone: the server create fails before anything duplicates,
    the adopt path keeps the firewall and IPs just made and uploads the key again."""
    run(plane, "keyed")
    for key in plane.hetzner.inventory()["ssh_keys"]:
        plane.infra().h.client.ssh_keys.get_by_id(key["id"]).delete()
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
