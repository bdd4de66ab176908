"""Review 29, finding 7: the API's abort workflow had one fixed id (`rollout-<id>-abort`), so
after it ended in ERROR (the drive's lease still held after its waits: "abort it again later")
every later `POST /v1/rollouts/{id}/abort` attached to that finished workflow and nothing ran.
A new abort after a failed or cancelled one now gets the next id (`rollout-<id>-abort-2`), and
`GET /v1/rollouts/{id}` lists every abort. DBOS 3.4 (`SetWorkflowID`): enqueuing an id that
exists returns a handle to that workflow rather than starting it again, which is why a new
attempt needs a new id. On SQLite and PostgreSQL; the boxes are unreachable, as in
test_api_rollouts.py, and the first abort is made to fail by the lease the drive holds.
"""

from __future__ import annotations

import pytest

from fatctl.errors import LeaseHeld
from tests.integration.service.test_api_rollouts import (  # noqa: F401  (fixtures)
    AGENTS,
    VERSION,
    Fleet,
    fleet,
    receiver,
    ssh_port,
)


def test_an_abort_that_failed_can_be_sent_again_and_runs(
    fleet: Fleet,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dbos import DBOS

    from fatctl.service import rollout_wf

    svc, admin = fleet.svc, fleet.svc.headers("admin")
    body = {"to": VERSION, "agents": list(AGENTS), "canary": 1, "health_timeout_s": 5}
    started = svc.client.post("/v1/rollouts", json=body, headers=admin).json()
    rid = started["rollout"]["id"]
    assert svc.wait(started["workflow_id"])["state"] == "halted"

    def held(*args: object) -> None:
        raise LeaseHeld("the drive still holds the rollout's lease")

    with monkeypatch.context() as patched:
        patched.setattr(rollout_wf, "ABORT_WAITS", 1)
        patched.setattr(rollout_wf, "ABORT_PAUSE_S", 0.0)
        patched.setattr(rollout_wf.engine, "abort", held)
        first = svc.client.post(f"/v1/rollouts/{rid}/abort", headers=admin).json()
        with pytest.raises(Exception, match="abort it again later"):  # as DBOS stored it
            svc.wait(first["workflow_id"])
    assert first["workflow_id"] == f"rollout-{rid}-abort"

    again = svc.client.post(f"/v1/rollouts/{rid}/abort", headers=admin)
    assert again.status_code == 202, again.text
    assert again.json()["workflow_id"] == f"rollout-{rid}-abort-2"
    assert svc.wait(again.json()["workflow_id"])["state"] == "aborted"
    shown = svc.client.get(f"/v1/rollouts/{rid}", headers=admin).json()
    assert shown["state"] == "aborted"
    assert [(w["workflow_id"], w["status"]) for w in shown["workflows"]] == [
        (f"rollout-{rid}", "SUCCESS"),
        (f"rollout-{rid}-abort", "ERROR"),
        (f"rollout-{rid}-abort-2", "SUCCESS"),
    ]
    # A third request while the second succeeded finds it (409: nothing left to undo).
    assert svc.client.post(f"/v1/rollouts/{rid}/abort", headers=admin).status_code == 409
    assert DBOS.get_workflow_status(f"rollout-{rid}-abort-3") is None


def test_a_rollout_whose_drive_cannot_be_enqueued_is_left_aborted(
    fleet: Fleet,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 29, finding 9: the rollout was committed RUNNING before its drive's enqueue; an
    enqueue failure (a database hiccup) answered 500 and left it running with nothing to drive
    it, for ever (and repair's "rollout busy" check off its hosts). It is now aborted."""
    from fatctl.service import rollout_wf
    from tests.integration.service.test_api_rollouts import rollouts

    def down(*args: object) -> str:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(rollout_wf, "start_drive", down)
    svc, admin = fleet.svc, fleet.svc.headers("admin")
    body = {"to": VERSION, "agents": list(AGENTS), "canary": 1, "health_timeout_s": 5}
    answer = svc.client.post("/v1/rollouts", json=body, headers=admin)
    assert answer.status_code == 500
    assert "went away" not in answer.text
    assert rollouts(svc.plane.db) == [("upgrade", "aborted")]
