"""Rollouts and the fleet through the API, and the events they send, on SQLite and PostgreSQL.

The agents are `ready` rows whose boxes cannot be reached (their SSH port is a closed loopback
port, and so is their HTTPS probe port): a rollout started through the API runs as a DBOS
workflow, its canary fails to connect, and the engine halts it after the canary wave, as it
would on a real fleet; the platform's receiver gets `rollout.finished` with the counts, signed.
The health sweep run by the `health-sweep` schedule's workflow sees the ready boxes fail and
sends `agent.degraded` once per agent, not again on the next sweep.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.service.conftest import Service, make_tokens, runtime_for, service_plane
from tests.integration.service.test_webhooks import SECRET, Receiver, receiver  # noqa: F401

AGENTS = ("ra1", "ra2", "ra3")
VERSION = "2026.10.1"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_ready(db: Any, tmp_path: Path, names: tuple[str, ...] = AGENTS) -> None:
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent, HostKey, Owner
    from tests.fixtures.sshd import fingerprint, keygen

    host_key = keygen(tmp_path / "hostkey", "host@test")
    with session_scope(db) as session:
        owner = Owner(email="fleet@example.com", plan="managed")
        session.add(owner)
        session.flush()
        for i, name in enumerate(names):
            agent = Agent(name=name, agent_id=f"id-{name}", owner_id=owner.id or 0,
                          state="ready", server_type="cx23", location="fsn1", image="debian-12",
                          runtime_version="2026.9.6", server_id=str(100 + i),
                          ipv4="127.0.0.1")  # fmt: skip
            session.add(agent)
            session.flush()
            key_type, print_ = host_key.split()[0], fingerprint(host_key)
            session.add(HostKey(agent_pk=agent.id or 0, key_type=key_type, public_key=host_key,
                                fingerprint=print_))  # fmt: skip


@dataclasses.dataclass
class Fleet:
    svc: Service
    receiver: Receiver


@pytest.fixture
def ssh_port() -> int:
    """The boxes' SSH port: closed, so a host step fails at once (a module may override it)."""
    return closed_port()


@pytest.fixture
def fleet(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str,
    receiver: Receiver,  # noqa: F811
    ssh_port: int,
) -> Iterator[Fleet]:  # fmt: skip
    """The service fixture's app, with a webhook receiver, the signing secret, unreachable
    boxes (closed SSH and probe ports, probed by address) and a delivery that never waits."""
    import dbos._dbos as dbos_module
    from fastapi.testclient import TestClient

    from fatctl.sensitive import Sensitive
    from fatctl.service.api.app import create_app
    from fatctl.service.webhooks.delivery import Policy, using
    from fatctl.service.webhooks.target import store_secret
    from fatctl.state.db import session_scope

    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url)
    settings = dataclasses.replace(plane.settings, webhook_url=receiver.url,
                                   ssh_port=str(ssh_port), probe_port=str(closed_port()),
                                   probe_by_address="1")  # fmt: skip
    plane = dataclasses.replace(plane, settings=settings)
    with session_scope(plane.db) as session:
        store_secret(session, plane.ring, Sensitive(SECRET))
    seed_ready(plane.db, tmp_path)
    try:
        with (
            using(Policy(max_attempts=2, sleep=lambda s: None)),
            TestClient(create_app(runtime_for(plane)), raise_server_exceptions=False) as client,
        ):
            svc = Service(plane, client.app.state.runtime, client, make_tokens(plane.db))  # type: ignore[attr-defined]
            yield Fleet(svc, receiver)
        assert dbos_module._dbos_global_instance is None
    finally:
        plane.db.dispose()


def delivered(wfid: str, kind: str, key: str = "") -> dict[str, Any]:
    """The delivery outcome of the event `kind` the workflow `wfid` emitted."""
    from dbos import DBOS

    from fatctl.service.webhooks.delivery import workflow_id
    from fatctl.service.webhooks.events import event_id_for

    source = f"{wfid}:{kind}" + (f":{key}" if key else "")
    return DBOS.retrieve_workflow(workflow_id(event_id_for(source))).get_result()


def rollouts(db: Any) -> list[tuple[str, str]]:
    from sqlmodel import select

    from fatctl.state.db import session_scope
    from fatctl.state.models import Rollout

    with session_scope(db) as session:
        return [(r.kind, r.state) for r in session.exec(select(Rollout)).all()]


def test_a_rollout_runs_as_a_workflow_halts_and_reports_signed(fleet: Fleet) -> None:
    svc, admin = fleet.svc, fleet.svc.headers("admin")
    body = {"to": VERSION, "agents": list(AGENTS), "canary": 1, "batch": 2,
            "health_timeout_s": 5}  # fmt: skip
    started = svc.client.post("/v1/rollouts", json=body, headers=admin)
    assert started.status_code == 202, started.text
    answer = started.json()
    rid = answer["rollout"]["id"]
    assert answer["rollout"] == {"id": rid, "state": "running", "hosts": 3, "waves": 2}
    assert answer["workflow_id"] == f"rollout-{rid}"
    assert svc.wait(answer["workflow_id"])["state"] == "halted"

    shown = svc.client.get(f"/v1/rollouts/{rid}", headers=admin).json()
    assert (shown["state"], shown["kind"], shown["target"]) == ("halted", "upgrade", VERSION)
    assert shown["counts"]["pending"] == 2 and sum(shown["counts"].values()) == 3
    assert [s["agent"] for s in shown["steps"]] == ["ra1", "ra2", "ra3"]
    assert shown["workflows"][0]["status"] == "SUCCESS"

    outcome = delivered(answer["workflow_id"], "rollout.finished")
    assert outcome["result"] == "delivered"
    (event,) = [e for e in fleet.receiver.events() if e["type"] == "rollout.finished"]
    assert event["data"]["rollout"] == rid and event["data"]["state"] == "halted"
    assert event["data"]["counts"] == shown["counts"] and event["data"]["hosts"] == 3
    assert all(r["verified"] for r in fleet.receiver.seen)

    aborted = svc.client.post(f"/v1/rollouts/{rid}/abort", headers=admin)
    assert aborted.status_code == 202, aborted.text
    assert svc.wait(aborted.json()["workflow_id"])["state"] == "aborted"
    after = svc.client.get(f"/v1/rollouts/{rid}", headers=admin).json()
    assert after["state"] == "aborted" and after["counts"].get("pending", 0) == 0
    last = delivered(aborted.json()["workflow_id"], "rollout.finished")
    assert last["result"] == "delivered"
    assert fleet.receiver.events()[-1]["data"]["state"] == "aborted"

    again = svc.client.post(f"/v1/rollouts/{rid}/abort", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["kind"] == "conflict"


def test_rollouts_list_newest_first_a_page_at_a_time(fleet: Fleet) -> None:
    svc, admin = fleet.svc, fleet.svc.headers("admin")
    ids = []
    for name in AGENTS:
        started = svc.client.post("/v1/rollouts", json={"to": VERSION, "agents": [name],
                                  "health_timeout_s": 5}, headers=admin)  # fmt: skip
        assert started.status_code == 202, started.text
        ids.append(started.json()["rollout"]["id"])
        svc.wait(started.json()["workflow_id"])
    first = svc.client.get("/v1/rollouts", params={"limit": 2}, headers=admin).json()
    assert [r["id"] for r in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    rest = svc.client.get("/v1/rollouts", params={"limit": 2, "cursor": first["next_cursor"]},
                          headers=admin).json()  # fmt: skip
    assert [r["id"] for r in rest["items"]] == ids[:1] and rest["next_cursor"] == ""


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        (None, {"to": VERSION, "all": True}, 401),
        ("writer", {"to": VERSION, "all": True}, 403),  # agents:write is not fleet:admin
        ("admin", {"to": "latest; rm -rf /", "all": True}, 400),
        ("admin", {"to": VERSION}, 400),  # no selection
        ("admin", {"to": VERSION, "all": True, "agents": ["ra1"]}, 400),  # two selections
        ("admin", {"to": VERSION, "agents": ["Bad Name"]}, 400),
        ("admin", {"to": VERSION, "label": "no-equals-sign"}, 400),
        ("admin", {"to": VERSION, "all": True, "batch": 0}, 400),
        ("admin", {"to": VERSION, "agents": ["nobody"]}, 400),  # as the CLI: bad input
        ("admin", {"to": VERSION, "label": "tier=gold"}, 400),  # nobody carries it
    ],
)
def test_start_refusals_record_nothing(
    fleet: Fleet, who: str | None, body: dict[str, Any], status: int
) -> None:
    svc = fleet.svc
    answer = svc.client.post("/v1/rollouts", json=body,
                             headers=svc.headers(who) if who else {})  # fmt: skip
    assert answer.status_code == status, answer.text
    assert "\n" not in answer.json()["error"]["message"]
    assert rollouts(svc.plane.db) == []


@pytest.mark.parametrize(
    ("method", "path", "who", "status"),
    [
        ("get", "/v1/rollouts/999", "admin", 404),
        ("post", "/v1/rollouts/999/abort", "admin", 404),
        ("get", "/v1/rollouts/abc", "admin", 400),
        ("get", "/v1/rollouts", "reader", 403),
        ("get", "/v1/rollouts", None, 401),
        ("get", "/v1/rollouts?cursor=_w", "admin", 400),
        # Review 29, finding 12: "²" (base64 wrI) passes str.isdigit() but not int(); thirty
        # nines overflow the id column. Both were a 500.
        ("get", "/v1/rollouts?cursor=wrI", "admin", 400),
        ("get", "/v1/rollouts?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "admin", 400),
        ("get", "/v1/fleet", "writer", 403),
        ("get", "/v1/fleet", None, 401),
    ],
)
def test_read_refusals(fleet: Fleet, method: str, path: str, who: str | None, status: int) -> None:
    svc = fleet.svc
    answer = getattr(svc.client, method)(path, headers=svc.headers(who) if who else {})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["message"]


def sweep(at: datetime) -> str:
    """Run the health-sweep schedule's workflow for the firing `at`; its workflow id."""
    from dbos import DBOS

    from fatctl.service.schedules import WORKFLOWS

    handle = DBOS.start_workflow(WORKFLOWS["health-sweep"], at, None)
    handle.get_result()
    return str(handle.workflow_id)


def test_fleet_counts_and_probes_and_degraded_once_per_transition(fleet: Fleet) -> None:
    svc, admin = fleet.svc, fleet.svc.headers("admin")
    before = svc.client.get("/v1/fleet", headers=admin)
    assert before.status_code == 200, before.text
    got = before.json()
    assert (got["agents"], got["by_state"], got["by_plan"]) == (3, {"ready": 3}, {"managed": 3})
    assert got["probes"] == {"ok": 0, "failing": 0, "unprobed": 3}

    # A scheduled run's instant is max(its firing time, the service's clock, the wall clock
    # here): firings at fixed times of a past day would all be stamped now. Tomorrow's are not.
    base = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0,
                                                           microsecond=0)  # fmt: skip
    first = sweep(base)
    for name in AGENTS:
        assert delivered(first, "agent.degraded", name)["result"] == "delivered"
    degraded = [e for e in fleet.receiver.events() if e["type"] == "agent.degraded"]
    assert sorted(e["agent"] for e in degraded) == list(AGENTS)
    assert all(r["verified"] for r in fleet.receiver.seen)

    later = base + timedelta(minutes=5)
    sweep(later)  # still failing: no new event
    assert len([e for e in fleet.receiver.events() if e["type"] == "agent.degraded"]) == 3

    page = svc.client.get("/v1/fleet", params={"limit": 2}, headers=admin).json()
    assert page["probes"] == {"ok": 0, "failing": 3, "unprobed": 0}
    assert [i["name"] for i in page["items"]] == ["ra1", "ra2"] and page["next_cursor"]
    assert page["items"][0]["probe"]["ok"] is False
    assert page["items"][0]["probe"]["at"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
