"""`fatctl move AGENT --abandon` against the API emulators (no box: `--no-box`): a move left open
after DNS switched to its replacement is given up: DNS back at the old IPs, the replacement
server and its primary IPs deleted, the row back on the old server, the op closed `abandoned`
(so `destroy` and a new move are no longer refused). Killed inside every write it sends to
either cloud, the rerun converges to the same. Refused in one line, exit 2, with nothing
written: without an open move, with the move's flags, and once the move retired the old box.
The old gateway's start and health gate are the box's: tests/reliability/test_crash_boxes.py.

Hetzner's documentation that the order of `discard` follows: a primary IP is deleted only when
unassigned ("Primary IP must be unassigned", `DELETE /primary_ips/{id}`), so the replacement
server goes first (its IPs have auto_delete false and stay, unassigned, after it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fatctl.errors import BadInput
from fatctl.services.common.open_ops import OpInProgress
from fatctl.services.lifecycle.move import move
from fatctl.services.lifecycle.move_abandon import abandon
from fatctl.services.lifecycle.ops import ops_of
from fatctl.services.lifecycle.suspend import suspend
from tests.integration.lifecycle.test_crash_lifecycle import ok
from tests.integration.lifecycle.test_destroy_open_op import StepFailed, move_failing_in
from tests.integration.lifecycle.test_move import context
from tests.integration.lifecycle.test_suspend_archive import agent, audit, provisioned
from tests.integration.provision.conftest import Plane
from tests.reliability.checks import agent_row, cloud_of, leases, name_of, servers_where
from tests.reliability.harness import KillAt, Lab, make_lab

OWNER = "crash@example.com"
MOVE = ("move", "--location", "hel1", "--no-box", "--no-backup", "--yes")
ABANDON = ("move", "--abandon", "--no-box", "--yes")
# The move is killed once DNS points at the replacement (after `https`, skipped without a box).
MOVE_LEFT_OPEN = KillAt(on="step.start:retire")


def test_abandon_after_dns_switched_brings_everything_back_to_the_old_box(
    plane: Plane, hcloud_client: Any
) -> None:
    provisioned(plane, "mover")
    before = agent(plane, "mover")
    old_ips = sorted(ip["ip"] for ip in plane.primary_ips())

    with pytest.MonkeyPatch.context() as patched:
        move_failing_in(plane, patched, "mover", "retire")  # DNS at the replacement by then
    assert sorted(plane.servers()) == ["mover", f"mover-mv{ops_of(plane.db, 'mover')[0].id}"]
    assert {c for t, n, c in plane.dns()} != {before.ipv4, before.ipv6}
    # As a move killed inside `retire` leaves it: the old server's protection lifted.
    old_server = hcloud_client.servers.get_by_id(int(before.server_id))
    old_server.change_protection(delete=False, rebuild=False).wait_until_finished()

    done = abandon(context(plane), "mover")

    assert sorted(plane.servers()) == ["mover"]
    [server] = plane.servers().values()
    assert name_of(server["location"]) == "fsn1" and str(server["id"]) == before.server_id
    assert server["protection"] == {"delete": True, "rebuild": True}
    assert sorted(ip["ip"] for ip in plane.primary_ips()) == old_ips
    assert {(t, c) for t, n, c in plane.dns()} == {("A", before.ipv4), ("AAAA", before.ipv6)}
    row = agent(plane, "mover")
    assert (row.server_id, row.ipv4, row.ipv6, row.location, row.server_type) == (
        before.server_id, before.ipv4, before.ipv6, "fsn1", before.server_type)  # fmt: skip
    assert (row.primary_ipv4_id, row.primary_ipv6_id) == (
        before.primary_ipv4_id, before.primary_ipv6_id)  # fmt: skip
    assert [(o.kind, o.state) for o in ops_of(plane.db, "mover")] == [("move", "abandoned")]
    assert [s["step"] for s in done.steps] == ["dns", "discard", "row", "start"]
    assert ("move-abandon.discard", "ok") in audit(plane, "mover", "move-abandon.")
    # No longer the agent's open op: other flows go on.
    suspend(context(plane), "mover", no_backup=True)


def test_abandon_is_refused_without_a_move_and_once_the_old_box_is_retired(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(plane, "mover")
    with pytest.raises(BadInput) as nothing:
        abandon(context(plane), "mover")
    assert nothing.value.exit_code == 2 and "no move to abandon" in nothing.value.one_line()

    move_failing_in(plane, monkeypatch, "mover", "promote")  # the old server deleted
    [open_move] = ops_of(plane.db, "mover")
    servers = sorted(plane.servers())
    with pytest.raises(BadInput) as retired:
        abandon(context(plane), "mover")
    assert retired.value.exit_code == 2
    assert "retired its old server" in retired.value.one_line()
    assert ops_of(plane.db, "mover") == [open_move] and sorted(plane.servers()) == servers
    # ... and finishing it still works.
    move(context(plane), "mover", location="hel1", no_backup=True)
    assert [(o.kind, o.state) for o in ops_of(plane.db, "mover")] == [("move", "done")]


def test_an_abandon_cut_short_is_only_finished_never_the_move_rerun(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: an abandon that failed after deleting the replacement, followed by a
    rerun of the move (then the refusals' only hint), retired the old box for a replacement
    that no longer existed: the agent ended `ready` with no server at all."""
    from fatctl.services.lifecycle import move_abandon

    provisioned(plane, "mover")
    before = agent(plane, "mover")
    move_failing_in(plane, monkeypatch, "mover", "retire")  # DNS at the replacement
    with monkeypatch.context() as patched:
        patched.setattr(move_abandon, "_row_back", lambda *a: (_ for _ in ()).throw(StepFailed))
        with pytest.raises(StepFailed):
            abandon(context(plane), "mover")
    assert sorted(plane.servers()) == ["mover"]  # the replacement is gone already

    with pytest.raises(BadInput) as refused:
        move(context(plane), "mover", location="hel1", no_backup=True)
    assert refused.value.exit_code == 2
    assert "`fatctl move mover --abandon`" in refused.value.one_line()
    with pytest.raises(OpInProgress) as other:
        suspend(context(plane), "mover", no_backup=True)
    assert "--location" not in other.value.one_line()
    assert "`fatctl move mover --abandon`" in other.value.one_line()

    abandon(context(plane), "mover")
    [server] = plane.servers().values()
    assert str(server["id"]) == before.server_id == agent(plane, "mover").server_id
    assert [(o.kind, o.state) for o in ops_of(plane.db, "mover")] == [("move", "abandoned")]


def test_retire_deletes_nothing_when_the_new_server_is_gone(
    plane: Plane, monkeypatch: pytest.MonkeyPatch, hcloud_client: Any
) -> None:
    """The engine's own guard: `retire` keeps the old server when the one it was told to keep
    does not exist (whatever removed it), so no path ends with the agent on no server."""
    from fatctl.errors import StateError

    provisioned(plane, "mover")
    before = agent(plane, "mover")
    move_failing_in(plane, monkeypatch, "mover", "retire")
    new_id = agent(plane, "mover").server_id
    gone = hcloud_client.servers.get_by_id(int(new_id))
    gone.change_protection(delete=False, rebuild=False).wait_until_finished()
    gone.delete().wait_until_finished()
    with pytest.raises(StateError) as refused:
        move(context(plane), "mover", location="hel1", no_backup=True)
    assert f"new server {new_id} is gone" in refused.value.one_line()
    assert [str(s["id"]) for s in plane.servers().values()] == [before.server_id]


def test_the_refusal_of_another_flow_names_both_ways_out(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(plane, "mover")
    move_failing_in(plane, monkeypatch, "mover", "dns")
    with pytest.raises(OpInProgress) as refused:
        suspend(context(plane), "mover", no_backup=True)
    line = refused.value.one_line()
    assert "`fatctl move mover --location hel1`" in line
    assert "`fatctl move mover --abandon`" in line


@pytest.fixture
def lab(tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any) -> Iterator[Lab]:
    made = make_lab(tmp_path, hetzner_emulator, cloudflare_emulator)
    yield made
    made.db.dispose()


def test_cli_refuses_bad_combinations_in_one_line_with_exit_2(lab: Lab) -> None:
    ok(lab, "provision", "cli-mv", "--owner", OWNER, "--no-box")
    for args in (("move", "cli-mv", "--no-box", "--yes"),
                 ("move", "cli-mv", "--abandon", "--location", "hel1", "--yes"),
                 ("move", "cli-mv", "--abandon", "--no-box", "--yes")):  # fmt: skip
        run = lab.fatctl(*args)
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert run.rc == 2 and len(lines) == 1, (args, run.stderr[-400:])
        assert lines[0].startswith("fatctl: error: "), lines
    assert ops_of(lab.db, "cli-mv") == []


def back_home(lab: Lab, name: str, before: Any, old_ips: list[str]) -> list[str]:
    seen = cloud_of(lab, name)
    row = agent_row(lab, name)
    wrong = []
    where = servers_where(seen)
    if where != [(name, "fsn1", None)]:
        wrong.append(f"servers {where}")
    if sorted(ip["ip"] for ip in seen["primary_ips"]) != old_ips:
        wrong.append(f"IPs {[(ip['name'], ip['ip']) for ip in seen['primary_ips']]}")
    records = [r["content"] for r in seen["a"]] + [r["content"] for r in seen["aaaa"]]
    if records != [before.ipv4, before.ipv6]:
        wrong.append(f"DNS {records}")
    if (row.server_id, row.location) != (before.server_id, "fsn1"):
        wrong.append(f"row on {row.server_id} in {row.location}")
    ops = [(o.kind, o.state) for o in ops_of(lab.db, name)]
    if ops != [("move", "abandoned")]:
        wrong.append(f"ops {ops}")
    return wrong


def test_abandon_killed_inside_every_write_converges(lab: Lab, figure: Any) -> None:
    def prepare(name: str) -> tuple[Any, list[str]]:
        ok(lab, "provision", name, "--owner", OWNER, "--no-box")
        before = agent_row(lab, name)
        old_ips = sorted(ip["ip"] for ip in cloud_of(lab, name)["primary_ips"])
        assert lab.fatctl(MOVE[0], name, *MOVE[1:], kill=MOVE_LEFT_OPEN).killed
        return before, old_ips

    prepare("abandon-ref")
    lab.reset_stats()
    ok(lab, ABANDON[0], "abandon-ref", *ABANDON[1:])
    writes = {cloud: lab.mutating_calls(cloud) for cloud in ("hetzner", "cloudflare")}
    assert writes["hetzner"] >= 3 and writes["cloudflare"] >= 1, writes

    failures, killed, runs = [], 0, 0
    for cloud, n in writes.items():
        for k in range(1, n + 1):
            name = f"ab-{cloud[:2]}-{k:02d}"
            before, old_ips = prepare(name)
            run = lab.fatctl(ABANDON[0], name, *ABANDON[1:], kill=KillAt(cloud=cloud, nth=k))
            killed += run.killed
            again = lab.fatctl(ABANDON[0], name, *ABANDON[1:])
            runs += 1
            wrong = back_home(lab, name, before, old_ips)
            if again.rc != 0:
                wrong.append(f"rerun exit {again.rc}: {again.stderr.strip()[-300:]}")
            failures += [f"{name} ({cloud} write {k}): {w}" for w in wrong]
    assert not leases(lab), leases(lab)
    figure("move --abandon: runs killed inside a write", killed)
    figure("move --abandon: reruns converged", runs - len({f.split(" ")[0] for f in failures}))
    assert killed == runs == sum(writes.values())
    assert not failures, "\n".join(failures)
