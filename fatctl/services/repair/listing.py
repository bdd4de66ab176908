"""`fatctl repair list`: every agent repair has something to say about, one row each.

An agent is listed when it is held or paged, has had a repair, or is failing sweeps now. Its
row says what the policy would do now (`decide`, the same judgement the sweep makes), and its
newest rung and how that ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fatctl.services.repair.ladder import (
    RUNGS,
    Leave,
    Page,
    Policies,
    Repair,
    decide,
    failing_run,
)
from fatctl.services.repair.records import facts

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

COLUMNS = ("agent", "state", "plan", "hold", "failing", "last_rung", "last_result", "last_at",
           "next")  # fmt: skip


def rows(db: Engine, policies: Policies, now: datetime) -> list[dict[str, object]]:
    out = []
    for one in facts(db):
        failing = len(failing_run(sorted(one.probes, key=lambda p: p.at)))
        rungs = sorted((a for a in one.attempts if a.rung in RUNGS), key=lambda a: a.started_at)
        if one.box.hold is None and not rungs and not failing:
            continue
        last = rungs[-1] if rungs else None
        action = decide(one.probes, one.attempts, one.box, policies.of(one.box.plan), now)
        out.append({
            "agent": one.box.name, "state": one.box.state, "plan": one.box.plan,
            "hold": one.box.hold or "", "failing": failing,
            "last_rung": last.rung if last else "", "last_result": last.result if last else "",
            "last_at": last.started_at.isoformat() if last else "", "next": _said(action),
        })  # fmt: skip
    return out


def _said(action: Leave | Repair | Page) -> str:
    if isinstance(action, Repair):
        return f"{action.rung} (rung {action.step})"
    if isinstance(action, Page):
        return f"page: {action.why}"
    return f"leave: {action.why}"
