"""`PulumiEngine.drift`: `refresh --preview-only --expect-no-changes` through the Automation API.

The Pulumi CLI cannot run here, so the Automation API's boundary is replaced: the stack that
`create_or_select_stack` returns is a stand-in that replays engine events (built with the real
`EngineEvent.from_json`) and fails the way the real `Stack.preview_refresh` does, by raising the
real `CommandError` with the CLI's text. Everything on fatctl's side of that boundary is real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fatctl.config import Settings
from fatctl.errors import CloudError
from fatctl.infra.pulumi.engine import PROJECT, PulumiEngine
from fatctl.infra.pulumi.refresh import refresh_step_from_event
from fatctl.sensitive import Sensitive
from fatctl.services.reconcile.diff import diff
from fatctl.services.reconcile.views import StackDrift, Views
from tests.stacks.test_agent_program import make_spec

URN = f"urn:pulumi:agent-alice::{PROJECT}::"


def event(kind: str, op: str, typ: str, name: str, old: dict, new: dict, diffs: list[str]) -> Any:
    from pulumi.automation import events

    urn = f"{URN}{typ}::{name}"
    meta = {
        "op": op, "urn": urn, "type": typ, "provider": "", "diffs": diffs,
        "old": {"type": typ, "urn": urn, "inputs": {}, "outputs": old},
        "new": {"type": typ, "urn": urn, "inputs": {}, "outputs": new},
        "detailedDiff": {d: {"diffKind": "update", "inputDiff": False} for d in diffs},
    }  # fmt: skip
    return events.EngineEvent.from_json({"sequence": 1, "timestamp": 0, kind: {"metadata": meta}})


SERVER = "hcloud:index/server:Server"
FIREWALL = "hcloud:index/firewall:Firewall"
UNCHANGED = [
    event("resourcePreEvent", "refresh", SERVER, "alice", {}, {}, []),
    event("resOutputsEvent", "refresh", SERVER, "alice", {"serverType": "cx23"},
          {"serverType": "cx23"}, []),
]  # fmt: skip
DRIFTED = [
    event("resourcePreEvent", "refresh", SERVER, "alice", {}, {}, []),
    event("resOutputsEvent", "update", SERVER, "alice", {"serverType": "cx23"},
          {"serverType": "cx33"}, ["serverType"]),
    event("resOutputsEvent", "delete", FIREWALL, "fatctl-alice", {}, {}, []),
]  # fmt: skip


class FakeStack:
    """What `create_or_select_stack` hands back, as far as `drift` uses it."""

    def __init__(self, events: list[Any], error: BaseException | None) -> None:
        self.events, self.error = events, error
        self.calls: list[dict[str, Any]] = []
        self.workspace = self

    def install_plugin(self, name: str, version: str) -> None:
        pass

    def export_stack(self) -> Any:
        from pulumi.automation import Deployment

        return Deployment(version=3, deployment={"resources": []})

    def preview_refresh(self, **kw: Any) -> None:
        self.calls.append(kw)
        for e in self.events:
            kw["on_event"](e)
        if self.error is not None:
            raise self.error


def command_error(stderr: str, concurrent: bool = False) -> BaseException:
    import pulumi.automation as auto
    from pulumi.automation._cmd import CommandResult

    cls = auto.ConcurrentUpdateError if concurrent else auto.CommandError
    return cls(CommandResult("", stderr, 255))


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import pulumi.automation as auto

    settings = Settings(data_dir=tmp_path, database_url="sqlite://",
                        master_key=Sensitive("bWFzdGVyLWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcyE="),
                        hcloud_token=Sensitive("hcloud-token-abcdef0123456789"),
                        pulumi_backend_url=f"file://{tmp_path / 'state'}")  # fmt: skip
    eng = PulumiEngine(settings, which=lambda name: "/opt/pulumi/bin/pulumi")
    monkeypatch.setattr(auto, "PulumiCommand", lambda **kw: None)  # it would exec the CLI

    def use(stack: FakeStack) -> PulumiEngine:
        monkeypatch.setattr(auto, "create_or_select_stack", lambda **kw: stack)
        return eng

    return use


def test_no_drift_is_an_empty_plan_and_asks_for_expect_no_changes(engine: Any) -> None:
    stack = FakeStack(UNCHANGED, None)
    plan = engine(stack).drift(make_spec())
    assert plan.changes == () and plan.agent == "alice"
    assert stack.calls[0]["expect_no_changes"] is True


def test_drift_is_read_from_the_events_when_the_cli_says_changes(engine: Any) -> None:
    error = command_error("error: no changes were expected but changes occurred\n")
    plan = engine(FakeStack(DRIFTED, error)).drift(make_spec())
    found = sorted((c.kind, c.name, c.action, c.detail) for c in plan.changes)
    assert found == [("firewall", "fatctl-alice", "delete", ""),
                     ("server", "alice", "update", "server_type cx23 -> cx33")]  # fmt: skip
    row = StackDrift("alice", tuple(f"{c.kind} {c.action}: {c.detail}" for c in plan.changes))
    findings = diff(Views(domain="x.test", agents=(), stacks=(row,)))
    assert [f.kind for f in findings] == ["drift", "drift"] and not any(f.fixable for f in findings)


def test_changes_the_events_did_not_name_still_count(engine: Any) -> None:
    error = command_error("error: no changes were expected for refresh but changes were proposed")
    plan = engine(FakeStack(UNCHANGED, error)).drift(make_spec())
    assert [(c.kind, c.action) for c in plan.changes] == [("stack", "update")]


def test_other_failures_are_one_line_errors(engine: Any) -> None:
    token = "hcloud-token-abcdef0123456789"
    failing = FakeStack([], command_error(f"error: hcloud: invalid token {token} (unauthorized)"))
    with pytest.raises(CloudError) as err:
        engine(failing).drift(make_spec())
    assert err.value.code == "pulumi" and token not in err.value.one_line()
    locked = FakeStack([], command_error("error: [409] Conflict", concurrent=True))
    with pytest.raises(CloudError) as err2:
        engine(locked).drift(make_spec())
    assert err2.value.code == "concurrent_update"


def test_unchanged_and_read_steps_are_not_drift() -> None:
    assert [refresh_step_from_event(e) for e in UNCHANGED] == [None, None]
    step = refresh_step_from_event(
        event("resOutputsEvent", "refresh", SERVER, "alice", {"labels": {}}, {"labels": {"a": "b"}},
              ["labels"])
    )  # fmt: skip
    assert step is not None and step["op"] == "update" and step["diffReasons"] == ["labels"]
