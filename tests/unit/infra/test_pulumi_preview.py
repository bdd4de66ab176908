"""The preview parser against recorded `pulumi preview --json` documents (written by hand in
the CLI's format, shipped under data/; issue 9's `fatctl preview` reuses them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fatctl.errors import BadInput
from fatctl.infra.pulumi.preview import kind_of, plan_from_preview_json, split_urn, summary

DATA = Path(__file__).parent / "data"


def load(name: str) -> str:
    return (DATA / name).read_text()


def test_unchanged_agent_reports_no_changes() -> None:
    plan = plan_from_preview_json(load("preview_unchanged.json"))
    assert plan.agent == "alice"
    assert not plan.has_changes
    assert len(plan.changes) == 8  # the stack and the provider are not resources
    assert summary(plan) == {
        "agent": "alice",
        "create": 0,
        "update": 0,
        "replace": 0,
        "delete": 0,
        "changes": False,
    }


def test_server_type_change_is_exactly_that_update() -> None:
    plan = plan_from_preview_json(load("preview_resize.json"))
    changed = [c for c in plan.changes if c.action != "same"]
    assert [(c.kind, c.name, c.action, c.detail) for c in changed] == [
        ("server", "alice", "update", "server_type cx23 -> cx33")
    ]
    assert not plan.replaces_server


def test_location_move_is_a_replacement_counted_once() -> None:
    doc = json.loads(load("preview_move.json"))
    plan = plan_from_preview_json(doc)
    assert plan.replaces_server
    assert plan.count("replace") == 3  # server + two IPs, though each has three steps
    assert plan.count("update") == 2
    server = next(c for c in plan.changes if c.kind == "server")
    assert server.detail == "location fsn1 -> hel1"


def test_unknown_ops_count_as_changes_and_bad_documents_are_refused() -> None:
    doc = json.loads(load("preview_unchanged.json"))
    doc["steps"][-1]["op"] = "some-future-op"
    assert plan_from_preview_json(doc).count("update") == 1
    with pytest.raises(BadInput, match="not a pulumi preview JSON"):
        plan_from_preview_json("{oops")
    with pytest.raises(BadInput, match="no `steps`"):
        plan_from_preview_json('{"changeSummary": {}}')
    with pytest.raises(BadInput, match="not a Pulumi URN"):
        split_urn("arn:aws:thing")


def test_urn_and_type_helpers() -> None:
    assert split_urn(
        "urn:pulumi:agent-bob::fatctl-agents::pulumi:pulumi:Stack$hcloud:index/rdns:Rdns::bob-rdns-ipv4"
    ) == (
        "agent-bob",
        "hcloud:index/rdns:Rdns",
        "bob-rdns-ipv4",
    )
    assert kind_of("hcloud:index/primaryIp:PrimaryIp") == "primary_ip"
    assert kind_of("pulumi:providers:hcloud") is None
    assert kind_of("pulumi:pulumi:Stack") is None
