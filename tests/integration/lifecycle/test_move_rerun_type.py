"""Review 29, finding 6: a move asked with `--type` that failed before `create` and was rerun
without it (as the refusal's hint said) made the replacement on the agent's old type, with no
warning: the rerun's empty `server_type` overwrote the stored one. A rerun now keeps the stored
type, a rerun with another type is refused (one line, exit 2, nothing written), and every hint
names both flags. The same for `--no-backup`: a rerun without it keeps the record that the
move skipped its backup. Against the emulators, no box (`--no-box --no-backup`)."""

from __future__ import annotations

import pytest

from fatctl.errors import BadInput
from fatctl.services.common.open_ops import OpInProgress
from fatctl.services.lifecycle.move import move
from fatctl.services.lifecycle.ops import ops_of
from fatctl.services.lifecycle.suspend import suspend
from tests.integration.lifecycle.test_destroy_open_op import move_failing_in
from tests.integration.lifecycle.test_move import context
from tests.integration.lifecycle.test_suspend_archive import agent, provisioned
from tests.integration.provision.conftest import Plane
from tests.reliability.checks import name_of


def test_a_rerun_without_type_keeps_the_type_the_move_was_asked_for(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(plane, "mover")
    assert agent(plane, "mover").server_type == "cx23"
    move_failing_in(plane, monkeypatch, "mover", "addresses", server_type="cx33")

    # Any other flow is told the whole command that finishes the move.
    with pytest.raises(OpInProgress) as refused:
        suspend(context(plane), "mover", no_backup=True)
    assert "`fatctl move mover --location hel1 --type cx33`" in refused.value.one_line()

    move(context(plane), "mover", location="hel1", no_backup=True)
    [server] = [s for s in plane.servers().values() if s["labels"].get("agent") == "mover"]
    assert (name_of(server["location"]), name_of(server["server_type"])) == ("hel1", "cx33")
    assert agent(plane, "mover").server_type == "cx33"


def test_a_rerun_with_another_type_is_refused_naming_both_flags(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(plane, "mover")
    move_failing_in(plane, monkeypatch, "mover", "addresses", server_type="cx33")
    [before] = ops_of(plane.db, "mover")
    with pytest.raises(BadInput) as refused:
        move(context(plane), "mover", location="hel1", server_type="cx43", no_backup=True)
    assert refused.value.exit_code == 2
    assert "rerun it with --location hel1 --type cx33" in refused.value.one_line()
    with pytest.raises(BadInput) as elsewhere:
        move(context(plane), "mover", location="nbg1", no_backup=True)
    assert "rerun it with --location hel1 --type cx33" in elsewhere.value.one_line()
    assert ops_of(plane.db, "mover") == [before]


def test_a_rerun_without_no_backup_keeps_the_record_that_the_backup_was_skipped(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fatctl.services.lifecycle.move import preview

    provisioned(plane, "mover")
    move_failing_in(plane, monkeypatch, "mover", "addresses")
    [failed] = ops_of(plane.db, "mover")
    assert failed.params.get("no_backup") is True

    # A rerun without the flag, as on a real box (these emulators have none to back up).
    monkeypatch.setattr("fatctl.services.lifecycle.move.require_backup_box", lambda *a: None)
    # What the rerun would do still says the backup was skipped, not that one is taken.
    shown = preview(context(plane), "mover", location="hel1", server_type=None, no_backup=False)
    assert shown["backup"] == "skipped: --no-backup"
    move(context(plane), "mover", location="hel1", no_backup=False)
    [done] = ops_of(plane.db, "mover")
    assert (done.state, done.params.get("no_backup")) == ("done", True)
