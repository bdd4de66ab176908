"""Review 29, finding 3, the API's half: `DELETE /v1/agents/{name}` of an agent with an
unfinished lifecycle op answers 409 naming the op, before any workflow (one failed on the op
would stay failed under its fixed id and answer every later DELETE with that error)."""

from __future__ import annotations

import pytest

from tests.integration.service.conftest import Service


class Interrupted(Exception):
    """The move's step failing after `create`."""


def test_api_delete_answers_409_naming_the_open_op_and_starts_no_workflow(service: Service) -> None:
    from dbos import DBOS

    from fatctl.services.lifecycle.ops import lifecycle_op

    made = service.client.post("/v1/agents", json={"name": "alpha", "owner_email": "a@b.test"},
                               headers=service.headers("writer"))  # fmt: skip
    service.wait(made.json()["workflow_id"])
    with pytest.raises(Interrupted), lifecycle_op(service.plane.db, "alpha", "move", "t",
                                              steps=("create", "dns")) as op:  # fmt: skip
        op.run("create", lambda: {})
        raise Interrupted
    gone = service.client.delete("/v1/agents/alpha", headers=service.headers("writer"))
    assert gone.status_code == 409, gone.text
    message = gone.json()["error"]["message"]
    assert "unfinished move (op " in message and "destroy refused" in message, message
    assert DBOS.list_workflows(name="destroy_wf") == []
    assert list(service.plane.servers()) == ["alpha"]
