"""Fleet SSH keys: agents sharing an operator key, and two agents of one customer sharing the
customer's key, all provision with both engines' representations (Hetzner refuses a second key
with the same fingerprint), and destroying one agent keeps the keys the others use.

hcloud: the real engine against the sandbox's Hetzner emulator. Pulumi: the Pulumi CLI cannot
run here, so the program runs under mocks whose `getSshKeys` invoke is answered by the emulator,
after the engine's own key step (`ensure_keys_for`) ran against it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fatctl.domain import AgentSpec, BoxInfo
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.infra.hcloud.keys import ensure_keys_for
from fatctl.infra.pulumi.engine import PulumiEngine
from fatctl.pacing.timing import Timing
from tests.integration.engines.conftest import (
    CU_KEY,
    OP_KEY,
    Recorder,
    agent_spec,
    emulator_lookup,
    emulator_settings,
)
from tests.stacks.harness import by_type, run_program

FLEET = "managed-by=fatctl,fatctl-key"


def fleet() -> list[AgentSpec]:
    """Two agents of one customer (same customer key) and another customer's, one operator key."""
    same = {"owner_email": "cust@example.com"}
    return [
        agent_spec("alice", **same),
        agent_spec("alicetwo", **same),
        agent_spec("bob", customer_keys=()),
    ]


def key_ids(client: Any) -> dict[str, int]:
    """Fleet key ids by role, asserting there is exactly one key per public key."""
    keys = client.ssh_keys.get_all()
    assert sorted(k.public_key for k in keys) == sorted([OP_KEY, CU_KEY])
    assert all("agent" not in k.labels and k.labels["managed-by"] == "fatctl" for k in keys)
    return {k.labels["role"]: k.id for k in keys}


def booted_with(emulator: Any) -> dict[str, list[int]]:
    return {s["name"]: s["ssh_keys"] for s in emulator.inventory()["servers"]}


def test_hcloud_engine_agents_share_fleet_keys(
    engine: HcloudEngine, hcloud_client: Any, hetzner_emulator: Any, recorder: Recorder
) -> None:
    for spec in fleet():
        assert engine.apply(spec).status == "running"
    ids = key_ids(hcloud_client)
    both = [ids["operator"], ids["customer"]]
    assert booted_with(hetzner_emulator) == {"alice": both, "alicetwo": both, "bob": both[:1]}
    engine.destroy(fleet()[0], release_ips=True)
    assert key_ids(hcloud_client) == ids  # alicetwo and bob still use them
    assert not engine.plan(fleet()[1]).has_changes
    engine.enable_rescue("alicetwo")
    recorder.clear()
    engine.apply(agent_spec("carol", owner_email="cust@example.com"))
    keys = [c.action for c in recorder.changes if c.kind == "ssh_key"]
    assert keys == ["same", "same"]
    assert booted_with(hetzner_emulator)["carol"] == both


def test_hcloud_engine_adopts_a_key_uploaded_by_hand(
    engine: HcloudEngine, hcloud_client: Any, recorder: Recorder
) -> None:
    by_hand = hcloud_client.ssh_keys.create(name="ops-laptop", public_key=OP_KEY)
    engine.apply(agent_spec("bob", customer_keys=()))
    (key,) = hcloud_client.ssh_keys.get_all()
    assert key.id == by_hand.id and key.name == "ops-laptop"
    assert key.labels["role"] == "operator" and key.labels["fatctl-key"]
    assert [(c.kind, c.action) for c in recorder.changes if c.kind == "ssh_key"] == [
        ("ssh_key", "update")
    ]


@pytest.fixture
def settings(hetzner_emulator: Any, tmp_path: Path) -> Any:
    return emulator_settings(hetzner_emulator, tmp_path)


def test_pulumi_programs_share_fleet_keys(
    settings: Any, engine: HcloudEngine, hcloud_client: Any
) -> None:
    lookup = emulator_lookup(hcloud_client)
    wanted: dict[str, list[str]] = {}
    for spec in fleet():
        ensured = ensure_keys_for(settings, spec, timing=Timing.instant(), emit=lambda c: None)
        regs, _ = run_program(spec, lookup=lookup)
        assert by_type(regs, "sshKey") == []  # no stack owns a key: its destroy cannot delete one
        (server,) = by_type(regs, "server")
        assert server.inputs["sshKeys"] == ensured
        wanted[spec.name] = ensured
    ids = key_ids(hcloud_client)
    both = [str(ids["operator"]), str(ids["customer"])]
    assert wanted == {"alice": both, "alicetwo": both, "bob": both[:1]}
    # One agent gone (its resources destroyed): the others' programs still find their keys.
    engine.apply(fleet()[0])
    engine.destroy(fleet()[0], release_ips=True)
    regs, _ = run_program(fleet()[1], lookup=lookup)
    assert by_type(regs, "server")[0].inputs["sshKeys"] == both


class _StackWithoutCli:
    """Stands in for the Automation API stack (no Pulumi CLI here): `up` runs the real program
    under mocks, its key lookup answered by the emulator at that moment (a key not uploaded yet
    fails the update)."""

    def __init__(self, spec: AgentSpec, client: Any, booted: dict[str, list[str]]) -> None:
        self.spec, self.client, self.booted = spec, client, booted

    def up(self, on_event: Any = None) -> Any:
        regs, outputs = run_program(self.spec, lookup=emulator_lookup(self.client))
        self.booted[self.spec.name] = by_type(regs, "server")[0].inputs["sshKeys"]
        return SimpleNamespace(outputs={k: SimpleNamespace(value=v) for k, v in outputs.items()})


def test_pulumi_engine_uploads_fleet_keys_before_up(
    settings: Any, hcloud_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = PulumiEngine(settings, timing=Timing.instant())
    booted: dict[str, list[str]] = {}
    monkeypatch.setattr(
        engine, "_stack", lambda spec, user_data="": _StackWithoutCli(spec, hcloud_client, booted)
    )
    infos: list[BoxInfo] = [engine.apply(spec) for spec in fleet()]
    assert [i.agent for i in infos] == ["alice", "alicetwo", "bob"]
    ids = key_ids(hcloud_client)  # exactly one key per public key
    both = [str(ids["operator"]), str(ids["customer"])]
    assert booted == {"alice": both, "alicetwo": both, "bob": both[:1]}
