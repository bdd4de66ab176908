"""Automatic repair as DBOS workflows (issue 20): one workflow per rung the policy chose.

After each health sweep the `health-sweep` schedule asks the policy (`services.repair.records.
select`) which boxes need a rung or a page, and enqueues one `repair_wf` each on the `agents`
queue, partitioned by agent name: a repair runs one at a time with that agent's provision,
destroy and other repairs, never beside them. The workflow id comes from the agent, the rung
and the sweep's instant (`repair-<name>-<rung>-<instant>`), so a replayed sweep enqueues the same
workflow again (DBOS attaches) instead of a second repair. Its one step runs the rung
(`services.repair.rungs.repair`), which asks the policy again under the agent's lease.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from fatctl.service.context import AGENTS_QUEUE, current
from fatctl.services.lifecycle.suspend import Context
from fatctl.services.repair.ladder import PAGE, Page, Repair, policies_from
from fatctl.services.repair.records import select
from fatctl.services.repair.rungs import repair

REPAIR_WORKFLOW = "repair_wf"
ACTOR = "repair"


def repair_id(agent: str, rung: str, now_iso: str) -> str:
    return f"repair-{agent}-{rung}-{now_iso}"


@DBOS.step(name="repair_run")
def _repair_step(agent: str, rung: str, now_iso: str) -> dict[str, Any]:
    rt = current()
    ctx = Context(rt.db, rt.ring, rt.settings, rt.make_infra(), ACTOR, backoff=rt.backoff,
                  clock=rt.clock, skip_box=rt.skip_box)  # fmt: skip
    now = datetime.fromisoformat(now_iso)
    return repair(ctx, agent, rung, policies_from(rt.settings), now).as_dict()


@DBOS.workflow(name=REPAIR_WORKFLOW)
def repair_workflow(agent: str, rung: str, now_iso: str) -> dict[str, Any]:
    return _repair_step(agent, rung, now_iso)


@DBOS.step(name="repair_select")
def _select(now_iso: str) -> list[list[str]]:
    """(agent, rung) for every box the policy would repair or page now (`page` for a page)."""
    rt = current()
    chosen = select(rt.db, policies_from(rt.settings), datetime.fromisoformat(now_iso))
    out = []
    for decision in chosen:
        if isinstance(decision.action, Repair):
            out.append([decision.agent, decision.action.rung])
        elif isinstance(decision.action, Page):
            out.append([decision.agent, PAGE])
    return out


def enqueue_repairs(now_iso: str) -> dict[str, int]:
    """From inside the sweep's workflow: select, then enqueue one repair workflow each."""
    chosen = _select(now_iso)
    for agent, rung in chosen:
        with SetWorkflowID(repair_id(agent, rung, now_iso)), \
                SetEnqueueOptions(queue_partition_key=agent):  # fmt: skip
            DBOS.enqueue_workflow(AGENTS_QUEUE, repair_workflow, agent, rung, now_iso)
    pages = sum(1 for _, rung in chosen if rung == PAGE)
    return {"repairs": len(chosen) - pages, "pages": pages}
