"""Old stacks that owned SSH keys hand them to the fleet: dropped from state, references too."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fatctl.config import Settings
from fatctl.infra.pulumi.engine import PulumiEngine
from fatctl.infra.pulumi.state import SSH_KEY_TYPE, release_owned_keys
from tests.stacks.test_agent_program import make_spec

PREFIX = "urn:pulumi:agent-alice::fatctl-agents::"
KEY = f"{PREFIX}{SSH_KEY_TYPE}::alice-operator-0"
FW = f"{PREFIX}hcloud:index/firewall:Firewall::fatctl-alice"
SERVER = f"{PREFIX}hcloud:index/server:Server::alice"


def old_deployment() -> dict[str, Any]:
    return {
        "manifest": {"time": "2026-11-20T10:00:00Z"},
        "resources": [
            {"urn": KEY, "type": SSH_KEY_TYPE, "id": "4000001"},
            {"urn": FW, "type": "hcloud:index/firewall:Firewall", "id": "7"},
            {
                "urn": SERVER,
                "type": "hcloud:index/server:Server",
                "id": "9",
                "dependencies": [KEY, FW],
                "propertyDependencies": {"sshKeys": [KEY], "firewallIds": [FW]},
            },
        ],
    }


def test_keys_and_references_are_dropped() -> None:
    before = old_deployment()
    cleaned, dropped = release_owned_keys(before)
    assert dropped == [KEY]
    assert [r["urn"] for r in cleaned["resources"]] == [FW, SERVER]
    server = cleaned["resources"][1]
    assert server["dependencies"] == [FW]
    assert server["propertyDependencies"] == {"sshKeys": [], "firewallIds": [FW]}
    assert cleaned["manifest"] == before["manifest"]
    assert before == old_deployment()  # the input is not modified


def test_a_new_stack_is_left_alone() -> None:
    fresh = {"resources": [r for r in old_deployment()["resources"] if r["urn"] != KEY]}
    assert release_owned_keys(fresh) == (fresh, [])
    assert release_owned_keys({}) == ({}, [])


class _Stack:
    """Just the export/import pair of an Automation API stack (no Pulumi CLI here)."""

    def __init__(self, deployment: dict[str, Any]) -> None:
        self.state = SimpleNamespace(version=3, deployment=deployment)
        self.imported: list[Any] = []

    def export_stack(self) -> Any:
        return self.state

    def import_stack(self, state: Any) -> None:
        self.imported.append(state)


def test_engine_imports_the_cleaned_state_once(tmp_path: Path) -> None:
    engine = PulumiEngine(Settings(data_dir=tmp_path, database_url="sqlite://"))
    old = _Stack(old_deployment())
    engine._release_owned_keys(old, make_spec())
    ((state,),) = [old.imported]
    assert state.version == 3 and [r["urn"] for r in state.deployment["resources"]] == [FW, SERVER]
    assert engine.notices == ["stack agent-alice: 1 ssh key(s) handed over to the fleet"]
    current = _Stack(state.deployment)
    engine._release_owned_keys(current, make_spec())
    assert current.imported == []
