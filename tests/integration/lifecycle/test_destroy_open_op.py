"""Review 29, finding 3: a destroy of an agent whose move is unfinished deleted only the old
server and IPs (the replacement, labelled `op=<id>`, is not the agent's to `destroy`), and
reconcile then kept skipping the replacement as the open move's for ever. Destroy (CLI flow and
API) now refuses an agent with an open op in one line, exit 2 / 409, naming the op and the
command that finishes it, with nothing changed; and reconcile reports a replacement of a
destroying or destroyed agent as an orphan. In process, against the emulators (`--no-box`
moves; no box is reached)."""

from __future__ import annotations

from typing import Any

import pytest

from fatctl.services.common.open_ops import OpInProgress
from fatctl.services.lifecycle import move as move_flow
from fatctl.services.lifecycle.move import move
from fatctl.services.lifecycle.ops import ops_of
from fatctl.services.provision.destroy import destroy
from tests.integration.lifecycle.test_move import context
from tests.integration.lifecycle.test_suspend_archive import agent, provisioned
from tests.integration.provision.conftest import Plane


class StepFailed(Exception):
    """A cloud failing one of the move's steps (Cloudflare at `dns`, Hetzner at `addresses`)."""


def move_failing_in(
    plane: Plane, monkeypatch: pytest.MonkeyPatch, name: str, step: str, **asked: Any
) -> None:
    """A move of `name` to hel1 left open by a failure inside `step` (its `_<step>` helper)."""

    def failing(*args: Any) -> Any:
        raise StepFailed

    with monkeypatch.context() as patched:
        patched.setattr(move_flow, f"_{step}", failing)
        with pytest.raises(StepFailed):
            move(context(plane), name, location="hel1", no_backup=True, **asked)


def test_destroy_refuses_an_agent_mid_move_and_changes_nothing(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(plane, "mover")
    move_failing_in(plane, monkeypatch, "mover", "dns")  # after `create`
    servers, ips = sorted(plane.servers()), plane.primary_ips()
    assert servers == ["mover", f"mover-mv{ops_of(plane.db, 'mover')[0].id}"]
    before = agent(plane, "mover")

    with pytest.raises(OpInProgress) as refused:
        destroy(plane.db, plane.ring, plane.settings, plane.infra(), "mover", "t",
                release_ips=True, backup=False)  # fmt: skip
    line = refused.value.one_line()
    assert refused.value.exit_code == 2
    assert "agent mover has an unfinished move (op " in line and "destroy refused" in line, line
    assert "`fatctl move mover --location hel1`" in line, line
    assert sorted(plane.servers()) == servers and plane.primary_ips() == ips
    after = agent(plane, "mover")
    assert (after.state, after.server_id) == (before.state, before.server_id)

    # Finished, the move leaves one server, which the destroy then removes.
    move(context(plane), "mover", location="hel1", no_backup=True)
    destroy(plane.db, plane.ring, plane.settings, plane.infra(), "mover", "t", release_ips=True,
            backup=False)  # fmt: skip
    assert plane.servers() == {} and plane.primary_ips() == []


def test_reconcile_reports_a_destroyed_agents_replacement_as_an_orphan() -> None:
    """The state a destroy before this fix left: agent destroyed, its move still open."""
    from fatctl.services.reconcile.diff import diff
    from fatctl.services.reconcile.views import CloudIp, CloudServer, DbAgent, Views

    labels = {"managed-by": "fatctl", "agent": "gone", "op": "7"}
    for state in ("destroying", "destroyed"):
        row = DbAgent("gone", state, "", "", "", "", open_op="move (op 7, failed after step dns)",
                      open_op_kind="move")  # fmt: skip
        servers = (CloudServer("2", "gone-mv7", "cx23", "running", "10.0.0.9", "2001:db8:9::1",
                               labels),)  # fmt: skip
        ips = (CloudIp("12", "gone-mv7-ipv4", "ipv4", "10.0.0.9", "2", labels),)
        found = diff(Views("example.test", (row,), servers=servers, ips=ips))
        orphans = {f.resource for f in found if f.kind == "orphan"}
        assert any("gone-mv7" in r and r.startswith("server") for r in orphans), (state, found)
        assert any("12" in r for r in orphans), (state, found)
