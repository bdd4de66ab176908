"""`/v1/rollouts`: start a runtime upgrade across agents, list, inspect and abort rollouts.

A start takes the options of `fatctl upgrade` (the version, exactly one of `agents`, `all`
or `label`, canary, batch or batch_percent, max_failures, health_timeout_s, keep_versions,
snapshot, backup), refuses bad ones with 400 before anything is written, records the rollout
and its pending host steps (`rollout.records.create`, as the CLI does) and starts its drive as
a DBOS workflow (`service.rollout_wf`): it answers at once, 202, with the rollout's id.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from fatctl.domain import RolloutPolicy, RolloutState, StepPhase
from fatctl.errors import BadInput
from fatctl.remote.commands.upgrade import check_version
from fatctl.service import rollout_wf
from fatctl.service.api.paging import Limit, Page, decode, encode
from fatctl.service.api.routes import ERRORS, Admin
from fatctl.service.errors import Conflict
from fatctl.service.workflows import workflow_state
from fatctl.services.common.targets import select_targets
from fatctl.services.rollout import records as rec
from fatctl.services.rollout.plan import plan_waves
from fatctl.state.db import session_scope
from fatctl.state.models import Rollout
from fatctl.validation import agent_name, label_selector

router = APIRouter(prefix="/v1", responses=ERRORS)


class StartRollout(BaseModel):
    to: str = Field(description="The OpenClaw version to roll out.", max_length=64)
    agents: list[str] = Field(default=[], description="These agents (or `all`, or `label`).")
    all: bool = Field(default=False, description="Every reachable agent.")
    label: str | None = Field(default=None, description="Agents carrying this label, k=v.")
    canary: int = Field(default=1, ge=0, description="Hosts upgraded alone first.")
    batch: int = Field(default=5, ge=1, description="Hosts a wave after the canaries.")
    batch_percent: float | None = Field(
        default=None, gt=0, le=100, description="A wave as a share of the fleet instead."
    )
    max_failures: int = Field(default=0, ge=0)
    health_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    keep_versions: int = Field(default=3, ge=1)
    snapshot: bool = Field(default=False, description="A Hetzner snapshot before each host.")
    backup: bool = Field(default=True, description="A state backup before each host changes.")

    def policy(self) -> RolloutPolicy:
        return RolloutPolicy(
            self.canary,
            self.batch,
            self.batch_percent,
            self.max_failures,
            self.health_timeout_s,
            self.snapshot,
            self.keep_versions,
            self.backup,
        )


SHOWN = ("id", "kind", "target", "state", "reason", "actor")


def _summary(rollout: Rollout) -> dict[str, Any]:
    finished = rollout.finished_at.isoformat() if rollout.finished_at else None
    row = {field: getattr(rollout, field) for field in SHOWN}
    return {**row, "created_at": rollout.created_at.isoformat(), "finished_at": finished}


@router.post("/rollouts", status_code=202)
def start_rollout(body: StartRollout, request: Request, token: Admin) -> JSONResponse:
    """Record the rollout and start driving it; answers at once (202)."""
    rt = request.app.state.runtime
    try:
        version = check_version(body.to)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    names = [agent_name(n.strip()) for n in body.agents if n.strip()]
    if body.label is not None:
        label_selector(body.label)
    targets = select_targets(rt.db, rt.settings, names=names, all_agents=body.all, label=body.label)
    if not targets:
        raise BadInput("no agents selected: none is running, or none carries the label")
    actor = f"token:{token.name}"
    policy = body.policy()
    waves = plan_waves(sorted(t.name for t in targets), policy)
    rollout_id = rec.create(
        rt.db, kind="upgrade", version=version, policy=policy, waves=waves, actor=actor
    )
    try:
        wfid = rollout_wf.start_drive(rollout_id, actor)
    except Exception as exc:
        # Nothing drives it: left running, it would show as running for ever and keep repair
        # off its hosts (a drive enqueued after all finds it aborted and does nothing).
        why = f"its workflow could not be started ({type(exc).__name__})"
        rec.finish(rt.db, rollout_id, RolloutState.ABORTED, why, actor)
        raise
    url = f"/v1/rollouts/{rollout_id}"
    answer = {
        "rollout": {
            "id": rollout_id,
            "state": RolloutState.RUNNING.value,
            "hosts": len(targets),
            "waves": len(waves),
        },
        "workflow_id": wfid,
        "status_url": url,
    }
    return JSONResponse(answer, status_code=202, headers={"Location": url})


@router.get("/rollouts", response_model=Page)
def list_rollouts(request: Request, token: Admin, limit: Limit = 50, cursor: str = "") -> Page:
    """Rollouts newest first, a page at a time."""
    before = decode(cursor)
    # ASCII digits only ("²".isdigit() is True, int("²") fails), and no more than a bigint
    # holds: anything else is not a cursor this API gave out, and a 400, not a 500.
    if before and not re.fullmatch(r"[0-9]{1,18}", before):
        raise BadInput("cursor is not one this API gave out")
    query = select(Rollout).order_by(col(Rollout.id).desc())
    if before:
        query = query.where(col(Rollout.id) < int(before))
    with session_scope(request.app.state.runtime.db) as session:
        found = list(session.exec(query.limit(limit + 1)).all())
        items = [_summary(r) for r in found[:limit]]
    more = len(found) > limit
    return Page(items=items, next_cursor=encode(str(items[-1]["id"])) if more else "")


@router.get("/rollouts/{rollout_id}")
def get_rollout(rollout_id: int, request: Request, token: Admin) -> dict[str, Any]:
    """The rollout, its hosts counted by phase, every host's step, and its workflows."""
    rollout, steps = rec.load(request.app.state.runtime.db, rollout_id)
    flows = (rollout_wf.drive_id(rollout_id), *rollout_wf.abort_ids(rollout_id))
    return {
        **_summary(rollout),
        "counts": rollout_wf.phase_counts(steps),
        "steps": rec.step_rows(steps),
        "workflows": [s for s in map(workflow_state, flows) if s is not None],
    }


@router.post("/rollouts/{rollout_id}/abort", status_code=202)
def abort_rollout(rollout_id: int, request: Request, token: Admin) -> JSONResponse:
    """Stop the rollout and put every changed host back; answers at once (202). A rollout
    that ended with no host changed has nothing to undo: 409."""
    rollout, steps = rec.load(request.app.state.runtime.db, rollout_id)
    changed = any(s.phase == StepPhase.SUCCEEDED for s, _ in steps)
    if rollout.state in (RolloutState.ABORTED, RolloutState.COMPLETED) and not changed:
        raise Conflict(f"rollout {rollout_id} is {rollout.state}: nothing to roll back")
    wfid = rollout_wf.start_abort(rollout_id, f"token:{token.name}")
    url = f"/v1/rollouts/{rollout_id}"
    return JSONResponse(
        {"rollout": {"id": rollout_id}, "workflow_id": wfid, "status_url": url},
        status_code=202,
        headers={"Location": url},
    )
