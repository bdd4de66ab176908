"""The Pulumi engine with only the Automation API boundary replaced (the Pulumi CLI cannot run
here): `create_or_select_stack` hands back a stack whose `preview` replays a recorded
`pulumi preview --json` document (tests/unit/infra/data) as the engine events the CLI would
stream. Everything above it (the engine's preflight, event folding, the preview service, the
summary and the exit codes) is the real code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fatctl.config import Settings
from fatctl.infra.pulumi.engine import PulumiEngine
from fatctl.sensitive import Sensitive

DATA = Path(__file__).parents[1] / "infra" / "data"


def recorded(name: str, agent: str = "alice") -> dict[str, Any]:
    """A recorded preview document, moved to `agent`'s stack (the recording is alice's)."""
    text = (DATA / f"preview_{name}.json").read_text()
    return json.loads(text.replace("alice", agent))


def _state(state: dict[str, Any] | None, urn: str, typ: str) -> dict[str, Any] | None:
    if not state:
        return None
    return {"type": typ, "urn": urn, "inputs": state.get("inputs") or {}}


def engine_event(step: dict[str, Any]) -> Any:
    """One recorded step as the ResourcePreEvent the CLI streams to the Automation API."""
    from pulumi.automation import events

    urn = step["urn"]
    typ = urn.split("::")[2].split("$")[-1]
    meta = {
        "op": step["op"],
        "urn": urn,
        "type": typ,
        "provider": step.get("provider", ""),
        "old": _state(step.get("oldState"), urn, typ),
        "new": _state(step.get("newState"), urn, typ),
        "diffs": step.get("diffReasons") or [],
        # The CLI's JSON says `kind` where the engine event says `diffKind`.
        "detailedDiff": {
            key: {"diffKind": diff.get("kind"), "inputDiff": bool(diff.get("inputDiff"))}
            for key, diff in (step.get("detailedDiff") or {}).items()
        },
        "keys": step.get("replaceReasons") or [],
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    return events.EngineEvent.from_json(
        {"sequence": 1, "timestamp": 0, "resourcePreEvent": {"metadata": meta}}
    )


@dataclass
class FakeStack:
    """A selected stack: `preview` and `up` replay the recorded steps as engine events."""

    name: str
    doc: dict[str, Any] | None
    calls: list[str] = field(default_factory=list)

    @property
    def workspace(self) -> Any:
        return self

    def install_plugin(self, name: str, version: str) -> None:
        return None

    def export_stack(self) -> Any:
        return type("Exported", (), {"version": 3, "deployment": {}})()

    def _replay(self, verb: str, on_event: Callable[[Any], None] | None) -> None:
        import pulumi.automation as auto
        from pulumi.automation._cmd import CommandResult

        self.calls.append(verb)
        if self.doc is None:  # what the CLI reports when the backend refuses
            raise auto.CommandError(CommandResult("", "error: failed to load checkpoint", 255))
        for step in self.doc["steps"]:
            if on_event:
                on_event(engine_event(step))

    def preview(self, on_event: Callable[[Any], None] | None = None, **kw: Any) -> Any:
        self._replay("preview", on_event)
        return None

    def up(self, on_event: Callable[[Any], None] | None = None, **kw: Any) -> Any:
        self._replay("up", on_event)
        return type("UpResult", (), {"outputs": {}})()

    def refresh(self, **kw: Any) -> None:
        self.calls.append("refresh")


@dataclass
class Recorded:
    """Which recorded document each stack previews (None: the preview fails)."""

    docs: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    stacks: list[FakeStack] = field(default_factory=list)

    def engine(self, settings: Settings) -> PulumiEngine:
        return PulumiEngine(settings, which=lambda name: "/opt/pulumi/bin/pulumi")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return Settings(
        data_dir=tmp_path,
        database_url="sqlite://",
        master_key=Sensitive("bWFzdGVyLWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcyE="),
        hcloud_token=Sensitive("hcloud-token-for-tests-0123456789"),
        pulumi_backend_url=f"file://{tmp_path / 'state'}",
    )


@pytest.fixture
def recorded_pulumi(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorded]:
    import pulumi.automation as auto

    rec = Recorded()

    def create_or_select_stack(stack_name: str, **kw: Any) -> FakeStack:
        agent = stack_name.removeprefix("agent-")
        stack = FakeStack(stack_name, rec.docs.get(agent))
        rec.stacks.append(stack)
        return stack

    monkeypatch.setattr(auto, "create_or_select_stack", create_or_select_stack)
    monkeypatch.setattr(auto, "PulumiCommand", lambda **kw: None)  # it would run the CLI
    yield rec
