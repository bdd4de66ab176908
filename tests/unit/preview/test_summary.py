"""`fatctl preview` on the Pulumi engine, from recorded `pulumi preview --json` documents: the
summary per agent, the totals, the JSON for CI, the exit codes (0 unchanged, 3 pending, 1 when
an agent fails, the others still shown) and the live-box replacement mark."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fatctl.cli.output import Output
from fatctl.config import Settings
from fatctl.errors import BadInput
from fatctl.infra.plan import replaces_live_box, resize_of
from fatctl.services.fleet.preview import (
    EXIT_CHANGES_PENDING,
    EXIT_FAILED,
    EXIT_NO_CHANGES,
    AgentPreview,
    FleetPreview,
    preview,
    selection,
)
from tests.stacks.test_agent_program import make_spec
from tests.unit.preview.conftest import Recorded, recorded


def fleet_of(rec: Recorded, settings: Settings, docs: dict[str, Any]) -> FleetPreview:
    rec.docs.update(docs)
    specs = [make_spec(name=name) for name in docs]
    return preview(rec.engine(settings), specs)


def test_unchanged_stack_exits_0(recorded_pulumi: Recorded, settings: Settings) -> None:
    fleet = fleet_of(recorded_pulumi, settings, {"alice": recorded("unchanged")})
    assert [s.name for s in recorded_pulumi.stacks] == ["agent-alice"]
    assert recorded_pulumi.stacks[0].calls == ["preview"]  # the preview really ran
    assert fleet.exit_code == EXIT_NO_CHANGES == 0
    doc = fleet.payload()
    assert doc["engine"] == "pulumi" and doc["changes_pending"] is False
    assert doc["agents"] == [
        {"agent": "alice", "creates": 0, "updates": 0, "replaces": 0, "deletes": 0,
         "replaces_live_box": False, "changes": [], "error": ""}
    ]  # fmt: skip
    assert doc["totals"]["with_changes"] == 0 and doc["exit_code"] == 0


def test_resize_is_one_pending_update_exit_3(recorded_pulumi: Recorded, settings: Settings) -> None:
    fleet = fleet_of(recorded_pulumi, settings, {"alice": recorded("resize")})
    assert fleet.exit_code == EXIT_CHANGES_PENDING == 3
    (row,) = fleet.payload()["agents"]
    assert (row["creates"], row["updates"], row["replaces"], row["deletes"]) == (0, 1, 0, 0)
    assert row["changes"] == [
        {"kind": "server", "name": "alice", "action": "update",
         "detail": "server_type cx23 -> cx33"}
    ]  # fmt: skip
    assert row["replaces_live_box"] is False
    plan = fleet.agents[0].plan
    assert plan is not None and resize_of(plan) == ("cx23", "cx33")


def test_move_is_a_flagged_replacement_exit_3(
    recorded_pulumi: Recorded, settings: Settings
) -> None:
    fleet = fleet_of(recorded_pulumi, settings, {"alice": recorded("move")})
    assert fleet.exit_code == 3
    (row,) = fleet.payload()["agents"]
    assert row["replaces_live_box"] is True
    assert (row["replaces"], row["updates"]) == (3, 2)
    assert fleet.totals()["replacing_live_boxes"] == 1
    plan = fleet.agents[0].plan
    assert plan is not None and replaces_live_box(plan) and resize_of(plan) is None


def test_one_failing_stack_exits_1_and_hides_no_other(
    recorded_pulumi: Recorded, settings: Settings
) -> None:
    docs = {"alice": recorded("unchanged"), "bob": recorded("resize", "bob"), "carol": None}
    fleet = fleet_of(recorded_pulumi, settings, docs)
    assert fleet.exit_code == EXIT_FAILED == 1
    rows = {r["agent"]: r for r in fleet.payload()["agents"]}
    assert list(rows) == ["alice", "bob", "carol"]
    assert rows["bob"]["updates"] == 1 and rows["bob"]["error"] == ""
    assert rows["alice"]["updates"] == 0
    assert "preview agent-carol" in rows["carol"]["error"]
    assert "failed to load checkpoint" in rows["carol"]["error"]
    assert fleet.totals()["errors"] == 1 and fleet.changes_pending


def test_replacement_on_only_an_ip_is_still_a_live_box(
    recorded_pulumi: Recorded, settings: Settings
) -> None:
    doc = recorded("move")
    doc["steps"] = [s for s in doc["steps"] if "::alice-ipv4" in s["urn"] or "Stack" in s["urn"]]
    fleet = fleet_of(recorded_pulumi, settings, {"alice": doc})
    plan = fleet.agents[0].plan
    assert plan is not None and not plan.replaces_server
    assert fleet.agents[0].replaces_live  # losing the IP breaks webhooks: same guard


def test_table_marks_replacements_without_escapes(
    recorded_pulumi: Recorded, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from fatctl.cli.preview import render_preview

    docs = {"alice": recorded("move"), "bob": recorded("unchanged", "bob")}
    fleet = fleet_of(recorded_pulumi, settings, docs)
    render_preview(Output(False), fleet)
    text = capsys.readouterr().out
    assert "\x1b" not in text and "│" not in text  # plain text when not a terminal
    lines = text.splitlines()
    assert lines[1].split() == ["agent", "creates", "updates", "replaces", "deletes", "note"]
    alice = next(line for line in lines if line.startswith("alice"))
    assert alice.split()[:5] == ["alice", "0", "2", "3", "0"] and "REPLACES LIVE BOX" in alice
    assert next(line for line in lines if line.startswith("bob")).split() == [
        "bob", "0", "0", "0", "0"
    ]  # fmt: skip
    assert "(exit 3)" in lines[-1]


def test_json_mode_prints_one_document(
    recorded_pulumi: Recorded, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from fatctl.cli.preview import render_preview

    fleet = fleet_of(recorded_pulumi, settings, {"alice": recorded("resize")})
    render_preview(Output(True), fleet)
    captured = capsys.readouterr()
    assert json.loads(captured.out) == fleet.payload()
    assert "exit 3" in captured.err  # the human summary stays off stdout


def test_selection_rules() -> None:
    assert selection([], False, None) == "all"  # preview's default: the whole fleet
    assert selection(["a"], False, None) == "agents"
    assert selection([], False, "location=fsn1") == "label"
    with pytest.raises(BadInput, match="at most one"):
        selection(["a"], True, None)


def test_totals_count_every_action() -> None:
    from fatctl.domain import Plan, ResourceChange

    plan = Plan(
        "x",
        (
            ResourceChange("firewall", "fw", "create"),
            ResourceChange("primary_ip", "ip", "delete"),
            ResourceChange("server", "x", "same"),
        ),
    )
    fleet = FleetPreview("hcloud", (AgentPreview("x", plan), AgentPreview("y", error="boom")))
    assert fleet.totals() == {
        "agents": 2, "creates": 1, "updates": 0, "replaces": 0, "deletes": 1,
        "with_changes": 1, "replacing_live_boxes": 0, "errors": 1,
    }  # fmt: skip
    assert fleet.exit_code == 1


def test_fleet_selector_narrows_only_for_a_few_named_agents() -> None:
    from fatctl.infra.hcloud.fleet import NARROW_UP_TO, fleet_selector

    assert str(fleet_selector(["b", "a"], whole_fleet=False)) == "managed-by=fatctl,agent in (a,b)"
    assert str(fleet_selector(["a"], whole_fleet=True)) == "managed-by=fatctl"
    many = [f"a{i}" for i in range(NARROW_UP_TO + 1)]
    assert str(fleet_selector(many, whole_fleet=False)) == "managed-by=fatctl"
