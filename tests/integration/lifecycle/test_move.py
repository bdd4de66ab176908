"""`fatctl move` against the API emulators (Hetzner, Cloudflare), with no box (`--no-box
--no-backup`: the backup, box steps, health and HTTPS are the box's, tested on real boxes in
tests/e2e/test_lifecycle.py): the agent ends with exactly one server, in the new location, named as
the agent, its DNS at the new primary IPs and the old IPs released; a move killed inside every
write to either cloud converges on its rerun.

Hetzner's documentation, which the emulator follows and the move relies on:
- Primary IPs, create: "If not assigned to a resource the location key needs to be provided
  ... A Primary IP can only be assigned to resource in the same Location later on." (the
  emulator refuses a server on an IP of another location: `primary_ip_datacenter_mismatch`),
  so a move needs new primary IPs in its new location;
- Servers, `PUT /servers/{id}`: "Updates a Server. You can update a Server's name and a
  Server's labels. Please note that Server names must be unique per Project and valid hostnames
  as per RFC 1123" (the emulator's `rename_relabel(..., hostname=True)` and
  `require_unique_name`), so the replacement is created as `<name>-mv<op>` and renamed once the
  old server is gone; `PUT /primary_ips/{id}` likewise takes a name and labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hcloud import APIException

from fatctl.errors import BadInput
from fatctl.pacing.poll import Backoff
from fatctl.services.lifecycle.move import move
from fatctl.services.lifecycle.ops import ops_of
from fatctl.services.lifecycle.suspend import Context
from tests.integration.lifecycle.test_crash_lifecycle import crash_each_write, ok
from tests.integration.lifecycle.test_suspend_archive import agent, audit, provisioned
from tests.integration.provision.conftest import Plane
from tests.reliability.checks import agent_row, cloud_of, name_of, servers_where
from tests.reliability.harness import Lab, make_lab

OWNER = "crash@example.com"
MOVE = ("move", "--location", "hel1", "--no-box", "--no-backup", "--yes")


def context(plane: Plane) -> Context:
    return Context(plane.db, plane.ring, plane.settings, plane.infra(), "test",
                   backoff=Backoff.instant(), skip_box=True)  # fmt: skip


def test_move_ends_with_one_server_in_the_new_location_and_dns_on_its_ips(plane: Plane) -> None:
    provisioned(plane, "mover")
    old = agent(plane, "mover")
    old_ips = {ip["ip"] for ip in plane.primary_ips() if ip["labels"].get("agent") == "mover"}
    done = move(context(plane), "mover", location="hel1", server_type="cx33", no_backup=True)

    servers = [s for s in plane.servers().values() if s["labels"].get("agent") == "mover"]
    assert [(s["name"], name_of(s["location"])) for s in servers] == [("mover", "hel1")]
    assert "op" not in servers[0]["labels"] and name_of(servers[0]["server_type"]) == "cx33"
    ips = [ip for ip in plane.primary_ips() if ip["labels"].get("agent") == "mover"]
    assert sorted(ip["name"] for ip in ips) == ["mover-ipv4", "mover-ipv6"]
    assert {name_of(ip["location"]) for ip in ips} == {"hel1"}
    assert {ip["assignee_id"] for ip in ips} == {servers[0]["id"]}
    assert not old_ips & {ip["ip"] for ip in ips}, "the old IPs were released, not reused"
    row = agent(plane, "mover")
    assert (row.location, row.server_type, row.server_id) == ("hel1", "cx33", str(servers[0]["id"]))
    assert row.server_id != old.server_id
    records = {(t, c) for t, n, c in plane.dns() if n.startswith("mover.")}
    assert records == {("A", row.ipv4), ("AAAA", row.ipv6)}
    assert done.detail["location"] == "hel1"
    assert [(o.kind, o.state) for o in ops_of(plane.db, "mover")] == [("move", "done")]
    assert ("move.backup", "skipped") in audit(plane, "mover", "move.")


def writes(handle: Any) -> int:
    calls = handle.stats()["calls"]
    return sum(n for key, n in calls.items() if key.split(" ")[0] in ("POST", "PUT", "DELETE"))


def test_move_within_its_location_is_refused_before_any_cloud_call(plane: Plane) -> None:
    provisioned(plane, "stayer")
    plane.hetzner.reset_stats()
    with pytest.raises(BadInput, match="fatctl box resize stayer cx33"):
        move(context(plane), "stayer", location="fsn1", server_type="cx33", no_backup=True)
    with pytest.raises(BadInput, match="already: nothing to move"):
        move(context(plane), "stayer", location="fsn1", no_backup=True)
    with pytest.raises(BadInput, match="unknown location"):
        move(context(plane), "stayer", location="mars1", no_backup=True)
    assert writes(plane.hetzner) == 0
    assert ops_of(plane.db, "stayer") == []


def test_mid_move_every_other_lookup_still_sees_the_one_old_box(plane: Plane) -> None:
    """The replacement exists beside the live box (a move stopped after `create`): the agent's
    own lookups (status, destroy, apply) and the fleet preview see only the old one."""
    from dataclasses import replace

    from fatctl.infra.hcloud.fleet import observe_fleet
    from fatctl.services.lifecycle.rebuild import render

    provisioned(plane, "midway")
    old = agent(plane, "midway")
    infra = plane.infra()
    spec, _ = render(context(plane), "midway", None)
    moved = replace(spec, location="hel1")
    infra.reserve_replacement(moved, 99)
    made = infra.create_replacement(moved, user_data="", op_id=99)
    assert made.location == "hel1" and made.server_id != old.server_id
    assert "midway-mv99" in plane.servers()
    assert infra.status("midway").server_id == old.server_id
    fleet = observe_fleet(infra.hcloud_client(), ["midway"])
    assert fleet.problems == {} and fleet.observed["midway"].server.id == old.server_id
    # Names are unique per project: the replacement cannot take the agent's name while the
    # old server lives (why `promote` comes after `retire`).
    client = infra.hcloud_client().client
    with pytest.raises(APIException) as refused:
        client.servers.update(client.servers.get_by_id(int(made.server_id)), name="midway")
    assert refused.value.code == "uniqueness_error"
    again = infra.create_replacement(moved, user_data="", op_id=99)  # a rerun adopts it
    assert again.server_id == made.server_id and len(plane.servers()) == 2


def test_the_pulumi_engine_refuses_a_move_by_its_capabilities(plane: Plane) -> None:
    """Its stack holds one server per agent: no replacement beside it (no `REPLACING`)."""
    from dataclasses import replace

    from fatctl.infra import make_engine

    provisioned(plane, "stacked")
    pulumi = replace(context(plane), infra=make_engine(plane.settings, "pulumi"))
    with pytest.raises(BadInput, match="pulumi engine cannot move"):
        move(pulumi, "stacked", location="hel1", no_backup=True)
    assert ops_of(plane.db, "stacked") == []


def test_reconcile_leaves_an_open_moves_replacement_to_the_op() -> None:
    """Mid-move the agent has two servers and four primary IPs labelled `agent=<name>`; the
    replacement's (`op=<id>`) are the open move's, neither an orphan nor a second server."""
    from fatctl.services.reconcile.diff import diff
    from fatctl.services.reconcile.views import CloudIp, CloudServer, DbAgent, Views

    old = {"managed-by": "fatctl", "agent": "mid"}
    new = {**old, "op": "7"}
    row = DbAgent("mid", "provisioning", "infra", "2", "10.0.0.9", "2001:db8:9::1",
                  open_op="move (op 7, failed after step create)", open_op_kind="move")  # fmt: skip
    servers = (
        CloudServer("1", "mid", "cx23", "running", "10.0.0.1", "2001:db8:1::1", old),
        CloudServer("2", "mid-mv7", "cx23", "running", "10.0.0.9", "2001:db8:9::1", new),
    )
    ips = (CloudIp("11", "mid-ipv4", "ipv4", "10.0.0.1", "1", old),
           CloudIp("12", "mid-mv7-ipv4", "ipv4", "10.0.0.9", "2", new))  # fmt: skip
    found = diff(Views("example.test", (row,), servers=servers, ips=ips))
    assert not [f for f in found if f.kind == "orphan"], found
    assert not [f for f in found if "2 servers" in f.detail], found
    assert not [f for f in found if "mid-mv7" in f.resource or "12" in f.resource], found


@pytest.fixture
def lab(tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any) -> Any:
    made = make_lab(tmp_path, hetzner_emulator, cloudflare_emulator)
    yield made
    made.db.dispose()


def moved(lab: Lab, name: str) -> list[str]:
    seen = cloud_of(lab, name)
    row = agent_row(lab, name)
    wrong = []
    where = servers_where(seen)
    if where != [(name, "hel1", None)]:
        wrong.append(f"servers {where}")
    ips = seen["primary_ips"]
    if sorted((ip["name"], name_of(ip["location"])) for ip in ips) != [
        (f"{name}-ipv4", "hel1"),
        (f"{name}-ipv6", "hel1"),
    ]:
        wrong.append(f"IPs {[(ip['name'], name_of(ip['location'])) for ip in ips]}")
    records = [r["content"] for r in seen["a"]] + [r["content"] for r in seen["aaaa"]]
    if records != [row.ipv4, row.ipv6] or row.location != "hel1":
        wrong.append(f"DNS {records}, row {row.ipv4} {row.ipv6} {row.location}")
    if len(seen["firewalls"]) != 1:
        wrong.append(f"{len(seen['firewalls'])} firewalls")
    return wrong


def test_cli_refuses_a_move_in_place_with_exit_2_and_dry_runs_change_nothing(lab: Lab) -> None:
    ok(lab, "provision", "cli-stay", "--owner", OWNER, "--no-box")
    run = lab.fatctl("move", "cli-stay", "--location", "fsn1", "--type", "cx33", *MOVE[3:])
    assert run.rc == 2, run.stderr[-400:]
    assert "fatctl box resize cli-stay cx33" in run.stderr
    assert "Traceback" not in run.stderr
    lab.reset_stats()
    planned = lab.fatctl("move", "cli-stay", "--location", "hel1", *MOVE[3:], "--dry-run")
    assert planned.rc == 0, planned.stderr[-400:]
    shown = repr(planned.events)
    assert "'location': 'hel1'" in shown and "cli-stay-mv" in shown, shown
    assert lab.mutating_calls("hetzner") == lab.mutating_calls("cloudflare") == 0
    assert ops_of(lab.db, "cli-stay") == []


def test_move_killed_inside_every_write_converges(lab: Lab, figure: Any) -> None:
    def prepare(name: str) -> None:
        ok(lab, "provision", name, "--owner", OWNER, "--no-box")

    crash_each_write(lab, MOVE, prepare, moved, figure)
