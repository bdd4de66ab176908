"""Engines bound to the sandbox's Hetzner emulator, with zero backoff and a change recorder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fatctl.config import Settings
from fatctl.domain import AgentSpec, ResourceChange, ServicePlan
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.timing import Timing
from fatctl.sensitive import Sensitive
from tests.integration.ssh.conftest import fleet_db  # noqa: F401 (fixture reused here)
from tests.stacks.harness import Lookup


def public_key(comment: str) -> str:
    """A real OpenSSH ed25519 public key (the emulator checks the key blob like Hetzner)."""
    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{raw.decode()} {comment}"


OP_KEY = public_key("op@ops")
CU_KEY = public_key("me@home")


def agent_spec(name: str = "alice", **overrides: Any) -> AgentSpec:
    base: dict[str, Any] = dict(
        name=name,
        agent_id=f"id-{name}",
        owner_email=f"{name}@example.com",
        plan=ServicePlan.MANAGED,
        domain="agents.example.net",
        server_type="cx23",
        location="fsn1",
        image="debian-12",
        operator_keys=(OP_KEY,),
        customer_keys=(CU_KEY,),
        operator_cidrs=("198.51.100.0/24",),
    )
    base.update(overrides)
    return AgentSpec(**base)


def emulator_settings(emulator: Any, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url="sqlite://",
        hcloud_token=Sensitive(emulator.token),
        hcloud_endpoint=emulator.url,
    )


def emulator_lookup(client: Any) -> Lookup:
    """Answer the Pulumi program's getSshKeys invoke with what the emulator lists for its
    selector (so the program's selector meets a real label-selector implementation)."""

    def lookup(selector: str) -> list[dict[str, Any]]:
        return [
            {"id": k.id, "name": k.name, "publicKey": k.public_key, "labels": k.labels}
            for k in client.ssh_keys.get_all(label_selector=selector)
        ]

    return lookup


class Recorder:
    def __init__(self) -> None:
        self.changes: list[ResourceChange] = []

    def __call__(self, change: ResourceChange) -> None:
        self.changes.append(change)

    def actions(self) -> dict[str, str]:
        return {f"{c.kind}:{c.name}": c.action for c in self.changes}

    def clear(self) -> None:
        self.changes.clear()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def engine(hetzner_emulator: Any, tmp_path: Path, recorder: Recorder) -> HcloudEngine:
    settings = emulator_settings(hetzner_emulator, tmp_path)
    return HcloudEngine(settings, timing=Timing.instant(), on_change=recorder, sleep=lambda s: None)
