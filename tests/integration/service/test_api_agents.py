"""The API drives agents through DBOS workflows, on SQLite and on PostgreSQL, against the
Hetzner and Cloudflare emulators (API-only: provisioning stops after DNS and infra, so the
end state is `provisioning` with `last_step == "infra"`, one server, two primary IPs, A+AAAA).
"""

from __future__ import annotations

import threading
from typing import Any

from tests.integration.service.conftest import Service

BODY = {"name": "alpha", "owner_email": "demo@example.com"}


def create(svc: Service, body: dict[str, Any] = BODY, who: str = "writer", **headers: str) -> Any:
    return svc.client.post("/v1/agents", json=body, headers=svc.headers(who, **headers))


def audit_rows(svc: Service) -> list[tuple[str, str, str, str]]:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(svc.plane.db) as session:
        events = repo.audit_trail(session, limit=1000)
        return [
            (e.actor, e.action, e.target, e.result) for e in events if e.action.startswith("api.")
        ]


def test_create_runs_the_provision_workflow_to_the_api_end_state(service: Service) -> None:
    answer = create(service)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["agent"]["name"] == "alpha" and body["agent"]["id"]
    assert body["status_url"] == "/v1/agents/alpha" == answer.headers["location"]
    result = service.wait(body["workflow_id"])
    assert result["state"] == "provisioning" and result["server_id"]  # box steps skipped

    plane = service.plane
    assert list(plane.servers()) == ["alpha"] and len(plane.primary_ips()) == 2
    assert plane.dns() == [("A", "alpha.sandbox.test", result["ipv4"]),
                           ("AAAA", "alpha.sandbox.test", result["ipv6"])]  # fmt: skip
    got = service.client.get("/v1/agents/alpha", headers=service.headers("reader")).json()
    assert got["last_step"] == "infra" and got["server_id"] == result["server_id"]
    assert got["workflows"] == [{"workflow_id": body["workflow_id"], "status": "SUCCESS",
                                 "error": ""}]  # fmt: skip
    assert ("token:writer", "api.POST", "/v1/agents", "ok") in audit_rows(service)


def test_same_idempotency_key_twice_gives_one_agent_and_one_workflow(service: Service) -> None:
    from dbos import DBOS

    first = create(service, **{"Idempotency-Key": "signup-42"})
    again = create(service, **{"Idempotency-Key": "signup-42"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    service.wait(first.json()["workflow_id"])
    assert len(DBOS.list_workflows(name="provision_wf")) == 1
    assert list(service.plane.servers()) == ["alpha"]

    other = create(service, {**BODY, "owner_email": "x@example.com"},
                   **{"Idempotency-Key": "signup-42"})  # fmt: skip
    assert other.status_code == 422 and other.json()["error"]["kind"] == "idempotency_mismatch"


def at_once(*sends: Any) -> list[Any]:
    """Each call's answer, the calls started together from threads of their own."""
    barrier = threading.Barrier(len(sends))
    answers: list[Any] = []

    def send(call: Any) -> None:
        barrier.wait()
        answers.append(call())

    threads = [threading.Thread(target=send, args=(call,)) for call in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_the_same_key_at_once_gives_both_the_one_answer(service: Service) -> None:
    from dbos import DBOS

    key = {"Idempotency-Key": "webhook-retry"}
    answers = at_once(*(lambda: create(service, **key) for _ in range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    service.wait(answers[0].json()["workflow_id"])
    assert len(DBOS.list_workflows(name="provision_wf")) == 1
    assert list(service.plane.servers()) == ["alpha"]


def test_two_creates_for_one_name_one_wins_the_other_409(service: Service) -> None:
    answers = at_once(*(lambda o=o: create(service, {"name": "race", "owner_email": o})
                        for o in ("a@example.com", "b@example.com")))  # fmt: skip
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409).json()["error"]
    assert loser["code"] == 1 and loser["kind"] in ("conflict", "lease_held")
    service.wait(next(a for a in answers if a.status_code == 202).json()["workflow_id"])
    assert list(service.plane.servers()) == ["race"]


def test_refused_requests_do_nothing_and_are_audited(service: Service) -> None:
    from dbos import DBOS

    from fatctl.service.tokens import create_token, revoke_token

    expired, _ = create_token(service.plane.db, "expired", ["agents:write"], "1m", "test")
    _expire(service, "expired")
    revoked, _ = create_token(service.plane.db, "revoked", ["agents:write"], None, "test")
    revoke_token(service.plane.db, "revoked", "test")
    post = service.client.post
    refusals = [
        (post("/v1/agents", json=BODY), 401),
        (post("/v1/agents", json=BODY, headers={"Authorization": "Bearer fat_x"}), 401),
        (post("/v1/agents", json=BODY, headers={"Authorization": f"Bearer {expired}"}), 401),
        (post("/v1/agents", json=BODY, headers={"Authorization": f"Bearer {revoked}"}), 401),
        (create(service, who="reader"), 403),
        (service.client.delete("/v1/agents/alpha", headers=service.headers("reader")), 403),
        (create(service, {"name": "BAD NAME", "owner_email": "demo@example.com"}), 400),
    ]  # fmt: skip
    for answer, status in refusals:
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert set(error) == {"code", "kind", "message"} and "\n" not in error["message"]
    assert DBOS.list_workflows() == [] and service.plane.servers() == {}
    assert service.client.get("/v1/agents", headers=service.headers("reader")).json() == {
        "items": [], "next_cursor": ""}  # fmt: skip
    rows = audit_rows(service)
    assert ("anonymous", "api.POST", "/v1/agents", "refused") in rows
    assert ("token:reader", "api.POST", "/v1/agents", "refused") in rows


def _expire(service: Service, name: str) -> None:
    from datetime import timedelta

    from sqlmodel import select

    from fatctl.clock import wall_clock
    from fatctl.state.db import session_scope
    from fatctl.state.models import ApiToken

    with session_scope(service.plane.db) as session:
        row = session.exec(select(ApiToken).where(ApiToken.name == name)).one()
        row.expires_at = wall_clock() - timedelta(seconds=1)
        session.add(row)


def test_list_pages_and_delete_runs_the_destroy_workflow(service: Service) -> None:
    ids = [create(service, {"name": f"page-{i}", "owner_email": "demo@example.com"}).json()
           for i in range(3)]  # fmt: skip
    for started in ids:
        service.wait(started["workflow_id"])
    seen, cursor = [], ""
    while True:
        page = service.client.get("/v1/agents", params={"limit": 2, "cursor": cursor},
                                  headers=service.headers("reader")).json()  # fmt: skip
        seen += [a["name"] for a in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ["page-0", "page-1", "page-2"]

    gone = service.client.delete("/v1/agents/page-1", params={"release_ips": True},
                                 headers=service.headers("admin"))  # fmt: skip
    assert gone.status_code == 202
    assert service.wait(gone.json()["workflow_id"])["state"] == "destroyed"
    assert sorted(service.plane.servers()) == ["page-0", "page-2"]
    missing = service.client.get("/v1/agents/nobody", headers=service.headers("reader"))
    assert missing.status_code == 404 and missing.json()["error"]["kind"] == "not_found"


def test_work_for_one_agent_runs_one_at_a_time(service: Service) -> None:
    """A delete sent while the agent's provision is queued never overlaps it: the queue is
    partitioned by agent name, one at a time per partition (DBOS: "Setting any partition_*
    limit makes the queue partitioned, so every enqueue must specify a queue_partition_key",
    `DBOS.register_queue` in dbos 3.4.0). Their order is not promised: on SQLite under Python
    3.11 DBOS stamps `created_at` in whole seconds (`strftime('%s','now') * 1000`, dbos
    `_migration.get_sqlite_timestamp_expr`), and ties go by workflow id, so the destroy may go
    first. Either way the agent ends destroyed with nothing left at the clouds: a provision
    after the destroy is refused ("use a new name"), and a destroy after it removes its box."""
    from dbos import DBOS

    made = create(service).json()
    gone = service.client.delete("/v1/agents/alpha", params={"release_ips": True},
                                 headers=service.headers("writer")).json()  # fmt: skip
    flows = [DBOS.retrieve_workflow(w["workflow_id"]) for w in (made, gone)]
    for flow in flows:
        try:
            flow.get_result()
        except Exception as exc:  # the provision, refused when the destroy went first
            assert "use a new name" in str(exc), exc
    # Stamps may be whole seconds (above): of two dequeued in one second, the first finished first.
    first, second = sorted((f.get_status() for f in flows),
                           key=lambda s: (s.dequeued_at or 0, s.completed_at or 0))  # fmt: skip
    assert first.completed_at is not None and second.dequeued_at is not None
    assert second.dequeued_at >= first.completed_at
    assert {first.queue_partition_key, second.queue_partition_key} == {"alpha"}
    got = service.client.get("/v1/agents/alpha", headers=service.headers("reader")).json()
    assert got["state"] == "destroyed"
    assert service.plane.servers() == {} and service.plane.primary_ips() == []
    assert service.plane.dns() == []


def test_delete_of_an_unreachable_box_fails_once_then_no_backup_destroys_it(
    service: Service,
) -> None:
    """Review 28 M2: the API's destroy always took the pre-destroy backup, so a dead box (the
    usual reason to destroy) could never be destroyed through the service. The backup failure
    now ends the workflow once (not retried), a plain DELETE again answers 409 naming
    `no_backup=true`, and that request destroys the agent with the skip on the audit trail."""
    import dataclasses

    from dbos import DBOS

    from fatctl.domain import AgentState
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    service.wait(create(service).json()["workflow_id"])
    # The box got past its secrets step (it holds state) and is gone: nothing listens on the
    # SSH port of its address.
    with session_scope(service.plane.db) as session:
        agent = repo.get_agent(session, "alpha")
        agent.state, agent.ipv4 = AgentState.READY.value, "127.0.0.1"
        session.add(agent)
    service.runtime.settings = dataclasses.replace(service.runtime.settings, ssh_port="9")

    first = service.client.delete("/v1/agents/alpha", headers=service.headers("writer"))
    assert first.status_code == 202
    status = DBOS.retrieve_workflow(first.json()["workflow_id"])
    try:
        status.get_result()
    except Exception as exc:
        failure = str(exc)
    else:
        raise AssertionError("the destroy of an unreachable box took no backup")
    assert "backup before destroy failed" in failure and "no_backup=true" in failure
    assert list(service.plane.servers()) == ["alpha"]  # nothing changed at the cloud

    again = service.client.delete("/v1/agents/alpha", headers=service.headers("writer"))
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert error["kind"] == "destroy_failed"
    assert "backup before destroy failed" in error["message"]
    assert "DELETE /v1/agents/alpha?no_backup=true" in error["message"]

    gone = service.client.delete("/v1/agents/alpha", params={"no_backup": True},
                                 headers=service.headers("writer"))  # fmt: skip
    assert gone.status_code == 202 and gone.json()["workflow_id"].endswith("-no-backup")
    assert service.wait(gone.json()["workflow_id"])["state"] == "destroyed"
    assert list(service.plane.servers()) == []
    with session_scope(service.plane.db) as session:
        backups = sorted((e.actor, e.result) for e in repo.audit_trail(session, limit=1000)
                         if e.action == "destroy.backup")  # fmt: skip
    # The first workflow's one attempt (started, failed), then the second's skip.
    assert backups == [("token:writer", "failed"), ("token:writer", "skipped"),
                       ("token:writer", "started")]  # fmt: skip
