"""A rollout started through the API whose server dies mid-host is finished by the next start.

`fatctl serve --no-box` runs as a real process; the agents' SSH port is a loopback listener
that accepts and never says a word, so the canary's step is `running` (its SSH handshake
waiting) when the process is SIGKILLed. The rollout's drive workflow is then PENDING under the
server's executor id, and a relaunch with that id recovers it (DBOS: "When an application with
an executor ID restarts, it only recovers pending workflows assigned to that executor ID",
docs.dbos.dev, production/self-hosting/workflow-recovery, as test_recovery.py relies on). The
recovered drive is the engine's `resume`: it re-verifies the half-done canary (now refused),
records it failed, and halts the rollout by its policy; the dead holder's leases are taken over
(same host, dead pid). One rollout, every step finished once, its `rollout.finished` recorded.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.service.conftest import make_tokens, service_plane
from tests.integration.service.test_api_rollouts import (  # noqa: F401  (fixtures)
    Fleet,
    closed_port,
    delivered,
    fleet,
    receiver,
    seed_ready,
)
from tests.integration.service.test_recovery import (
    POLL_S,
    finish_as_the_killed_server,
    serve_env,
    serve_then_kill,
    wait_until,
)


@pytest.fixture
def silent_ssh() -> Iterator[int]:
    """A port that accepts connections and never answers (an SSH server that hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def ssh_port(silent_ssh: int) -> int:
    """The `fleet` fixture's boxes hang in their SSH handshake here."""
    return silent_ssh


def phases(db: Any) -> dict[str, str]:
    from sqlmodel import col, select

    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent, RolloutStep

    with session_scope(db) as session:
        joined = col(RolloutStep.agent_pk) == col(Agent.id)
        rows = session.exec(select(Agent.name, RolloutStep.phase).join(RolloutStep, joined)).all()
        return {str(name): str(phase) for name, phase in rows}


def test_killed_server_mid_rollout_is_resumed_by_the_next_start(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str,
    silent_ssh: int,
) -> None:  # fmt: skip
    from fatctl.secrets import generate_master_key

    key = generate_master_key()
    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url, master_key=key)
    seed_ready(plane.db, tmp_path, ("ra1", "ra2"))
    tokens = make_tokens(plane.db)
    env = {**serve_env(plane, key, tmp_path), "FATCTL_SSH_PORT": str(silent_ssh)}
    with serve_then_kill(env, tokens["admin"], tmp_path) as api:
        body = {"to": "2026.10.1", "agents": ["ra1", "ra2"], "canary": 1, "health_timeout_s": 5}
        answer = api.post("/v1/rollouts", json=body)
        assert answer.status_code == 202, answer.text
        wfid, rid = answer.json()["workflow_id"], answer.json()["rollout"]["id"]
        wait_until("the canary's step runs", lambda: phases(plane.db).get("ra1") == "running")

    settings = dataclasses.replace(plane.settings, poll_interval=str(POLL_S),
                                   ssh_port=str(closed_port()))  # fmt: skip
    result = finish_as_the_killed_server(plane, settings, wfid)
    assert (result["rollout"], result["state"]) == (rid, "halted")
    assert phases(plane.db)["ra2"] == "pending"  # halted after the canary wave
    assert phases(plane.db)["ra1"] in ("failed", "unreachable")
    assert result["counts"] == {phases(plane.db)["ra1"]: 1, "pending": 1}
    plane.db.dispose()


def test_abort_of_a_running_rollout_waits_for_its_drive_then_rolls_back(
    fleet: Fleet,  # noqa: F811  (the imported fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An abort while the canary hangs: the drive is cancelled, the abort waits (durable
    pauses) until the drive's step lets go of the rollout's lease, then cancels what is
    pending; the platform hears `rollout.finished` once, from the abort."""
    from dbos import DBOS

    from fatctl.service import rollout_wf

    monkeypatch.setattr(rollout_wf, "ABORT_PAUSE_S", 0.2)
    svc, admin = fleet.svc, fleet.svc.headers("admin")
    body = {"to": "2026.10.1", "agents": ["ra1", "ra2"], "canary": 1, "health_timeout_s": 5}
    started = svc.client.post("/v1/rollouts", json=body, headers=admin).json()
    rid, drive = started["rollout"]["id"], started["workflow_id"]
    wait_until("the canary's step runs", lambda: phases(svc.plane.db).get("ra1") == "running")

    aborted = svc.client.post(f"/v1/rollouts/{rid}/abort", headers=admin)
    assert aborted.status_code == 202, aborted.text
    result = svc.wait(aborted.json()["workflow_id"])
    assert result["state"] == "aborted"
    assert phases(svc.plane.db)["ra2"] == "cancelled"
    assert DBOS.get_workflow_status(drive).status == "CANCELLED"  # type: ignore[union-attr]
    assert delivered(aborted.json()["workflow_id"], "rollout.finished")["result"] == "delivered"
    finished = [e for e in fleet.receiver.events() if e["type"] == "rollout.finished"]
    assert [e["data"]["state"] for e in finished] == ["aborted"]
