"""The health-sweep schedule enqueues the repairs the policy chooses, as DBOS workflows on the
`agents` queue (partitioned by agent), on SQLite and PostgreSQL.

Time is injected as in tests/integration/service/test_schedules.py: `DBOS.backfill_schedule`
enqueues a firing a day ahead, whose instant the run checkpoints. The agent's two earlier sweeps
are seeded failures; the scheduled sweep itself probes the agent for real (HTTPS to its address,
then SSH: nothing listens on either, so it fails a third time), the policy chooses the restart,
and the repair workflow runs it for real against the same closed SSH port: a failed rung,
recorded and audited. A replay of the sweep's enqueue attaches to the same workflow id.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration.repair.test_repair_records import HOST_KEY, _closed_port
from tests.integration.service.conftest import runtime_for, service_plane

SCHEDULES_OFF = {f"schedule_{n}": "off" for n in ("r2_rotate", "reconcile", "backup_verify")}


def _seed(db: Any, before: datetime) -> None:
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent, HostKey, Owner, ProbeResult

    with session_scope(db) as session:
        owner = Owner(email="o@example.com", plan="managed")
        session.add(owner)
        session.flush()
        agent = Agent(name="down", agent_id="id-down", owner_id=owner.id or 0, state="ready",
                      server_type="cx23", location="fsn1", image="debian-12",
                      runtime_version="2026.9.6", server_id="7", ipv4="127.0.0.1")  # fmt: skip
        session.add(agent)
        session.flush()
        pk = agent.id or 0
        session.add(HostKey(agent_pk=pk, key_type="ssh-ed25519", public_key=HOST_KEY,
                            fingerprint="x"))  # fmt: skip
        for minutes in (10, 5):
            session.add(ProbeResult(agent_pk=pk, at=before - timedelta(minutes=minutes), ok=False,
                                    via="ssh", status_code=None, error="refused"))  # fmt: skip


def test_the_sweep_enqueues_the_chosen_rung_and_its_workflow_records_it(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str
) -> None:
    from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

    from fatctl.service.context import AGENTS_QUEUE
    from fatctl.service.repair_wf import repair_id, repair_workflow
    from fatctl.service.runtime import running
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 5)  # a health-sweep firing time
    _seed(plane.db, start)
    runtime = runtime_for(plane)
    runtime.settings = dataclasses.replace(plane.settings, **SCHEDULES_OFF,
                                           ssh_port=str(_closed_port()))  # fmt: skip
    runtime.schedules = True
    with running(runtime):
        window = (start - timedelta(minutes=1), start + timedelta(minutes=1))
        (handle,) = DBOS.backfill_schedule("health-sweep", *window)
        swept = handle.get_result()
        wfid = repair_id("down", "restart", swept["now"])
        outcome = DBOS.retrieve_workflow(wfid).get_result()
        # The same enqueue again (a replayed sweep) attaches to the finished workflow.
        with SetWorkflowID(wfid), SetEnqueueOptions(queue_partition_key="down"):
            again = DBOS.enqueue_workflow(AGENTS_QUEUE, repair_workflow, "down", "restart",
                                          swept["now"])  # fmt: skip
        assert again.get_result() == outcome
    assert (swept["down"], swept["repairs"], swept["pages"]) == (1, 1, 0), swept
    assert (outcome["rung"], outcome["result"]) == ("restart", "failed"), outcome
    with session_scope(plane.db) as session:
        from sqlmodel import select

        from fatctl.state.models import RepairAttempt

        rows = session.exec(select(RepairAttempt)).all()
        assert [(r.rung, r.result) for r in rows] == [("restart", "failed")]
        actions = [(e.action, e.result, e.actor) for e in repo.audit_trail(session, target="down")]
    assert ("repair.restart", "failed", "repair") in actions
