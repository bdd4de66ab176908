"""What the repair policy reads, and what repair writes: `repair_attempts` and `repair_holds`
(migration 0012), beside the probe history (`probe_results`), the agents and their plans, the
unfinished lifecycle ops and the rollouts' host steps.

`facts` reads everything the policy needs for every agent in one transaction; `select` judges
them with `ladder.decide`. A rung's row is written `running` before the rung runs and closed
after, so a second sweep meanwhile sees a repair running; a page is a row of its own and a hold
of kind `paged`. Every write is also an audit event (`repair.<rung>`, `repair.paged`,
`repair.hold`, `repair.release`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fatctl.domain import RolloutState, StepPhase
from fatctl.errors import BadInput
from fatctl.sensitive import redact
from fatctl.services.common.open_ops import open_ops
from fatctl.services.repair.ladder import (
    OK,
    PAGE,
    PAGED,
    RELEASE,
    RUNNING,
    Action,
    Attempt,
    Box,
    Leave,
    Policies,
    Probe,
    decide,
)
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

OPERATOR = "operator"
DETAIL_MAX = 300
# A rollout's host step that is still to come or under way: the rollout owns that box.
_ROLLOUT_BUSY = (StepPhase.PENDING.value, StepPhase.RUNNING.value)


@dataclass(frozen=True)
class Facts:
    """One agent as the policy sees it."""

    pk: int
    box: Box
    probes: tuple[Probe, ...]
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True)
class Decision:
    agent: str
    action: Action


def utc(when: Any) -> datetime:
    """A stored time as aware UTC (SQLite hands back naive datetimes or ISO strings)."""
    value = when if isinstance(when, datetime) else datetime.fromisoformat(str(when))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def clip(text: str) -> str:
    line = redact(" ".join(text.split()))
    return line if len(line) <= DETAIL_MAX else line[: DETAIL_MAX - 3] + "..."


def facts(db: Engine, names: list[str] | None = None) -> list[Facts]:
    """Every agent (or those named), with its probes, repairs, hold, op and rollout."""
    from sqlmodel import col, select

    from fatctl.state.models import Agent, Owner, ProbeResult, RepairAttempt, RepairHold

    with session_scope(db) as session:
        query = select(Agent, Owner.plan).join(Owner, col(Owner.id) == col(Agent.owner_id))
        if names is not None:
            query = query.where(col(Agent.name).in_(names))
        agents = session.exec(query.order_by(col(Agent.name))).all()
        pks = [a.id for a, _ in agents]
        probes: dict[int, list[Probe]] = defaultdict(list)
        for p in session.exec(select(ProbeResult).where(col(ProbeResult.agent_pk).in_(pks))):
            probes[p.agent_pk].append(Probe(utc(p.at), p.ok))
        attempts: dict[int, list[Attempt]] = defaultdict(list)
        for r in session.exec(select(RepairAttempt).where(col(RepairAttempt.agent_pk).in_(pks))):
            done = None if r.finished_at is None else utc(r.finished_at)
            attempts[r.agent_pk].append(Attempt(r.rung, utc(r.started_at), done, r.result))
        holds = {h.agent_pk: h.kind for h in session.exec(select(RepairHold))}
        ops = open_ops(session)
        rolling = _in_rollout(session)
        return [
            Facts(pk, Box(a.name, a.state, str(plan), holds.get(pk),
                          ops[pk].kind if pk in ops else None, pk in rolling),
                  tuple(probes[pk]), tuple(attempts[pk]))
            for a, plan in agents
            if (pk := a.id or 0)
        ]  # fmt: skip


def _in_rollout(session: Session) -> set[int]:
    """Agents a rollout owns now: a host step under way anywhere, or still to come in a
    running rollout (a halted one waits for an operator, who may hold the box meanwhile)."""
    from sqlmodel import col, select

    from fatctl.state.models import Rollout, RolloutStep

    query = select(RolloutStep.agent_pk, RolloutStep.phase, Rollout.state).join(
        Rollout, col(Rollout.id) == col(RolloutStep.rollout_id)
    )
    busy = set()
    for pk, phase, state in session.exec(query.where(col(RolloutStep.phase).in_(_ROLLOUT_BUSY))):
        if phase == StepPhase.RUNNING.value or state == RolloutState.RUNNING.value:
            busy.add(pk)
    return busy


def select(db: Engine, policies: Policies, now: datetime) -> list[Decision]:
    """The policy's answer for every agent that is not simply healthy or left alone."""
    decided = []
    for one in facts(db):
        action = decide(one.probes, one.attempts, one.box, policies.of(one.box.plan), now)
        decided.append(Decision(one.box.name, action))
    return [d for d in decided if not isinstance(d.action, Leave)]


def start_attempt(db: Engine, agent: str, rung: str, now: datetime) -> int:
    """The rung's row, `running` until `finish_attempt` closes it."""
    from fatctl.state import repo
    from fatctl.state.models import RepairAttempt

    with session_scope(db) as session:
        pk = repo.get_agent(session, agent).id or 0
        row = RepairAttempt(agent_pk=pk, rung=rung, started_at=now, result=RUNNING)
        session.add(row)
        session.flush()
        return row.id or 0


def finish_attempt(db: Engine, attempt_id: int, result: str, detail: str, now: datetime) -> None:
    from fatctl.state.models import RepairAttempt

    with session_scope(db) as session:
        row = session.get(RepairAttempt, attempt_id)
        if row is not None:  # gone with its agent (destroyed meanwhile)
            row.result, row.detail, row.finished_at = result, clip(detail), now
            session.add(row)


def page(db: Engine, agent: str, why: str, actor: str, now: datetime) -> None:
    """The ladder gives up: a `page` row, a hold of kind `paged`, the `repair.paged` audit."""
    from fatctl.state import repo
    from fatctl.state.models import RepairAttempt, RepairHold

    with session_scope(db) as session:
        pk = repo.get_agent(session, agent).id or 0
        session.add(RepairAttempt(agent_pk=pk, rung=PAGE, started_at=now, finished_at=now,
                                  result=PAGED, detail=clip(why)))  # fmt: skip
        if session.get(RepairHold, pk) is None:
            session.add(RepairHold(agent_pk=pk, kind=PAGED, actor=actor[:100], reason=clip(why),
                                   since=now))  # fmt: skip
        repo.audit(session, actor=actor, action="repair.paged", target=agent, result="paged",
                   detail={"why": clip(why)}, at=now)  # fmt: skip


def hold(db: Engine, agent: str, actor: str, reason: str, now: datetime) -> bool:
    """An operator's hold; False when the agent was already held (the hold is kept as it was)."""
    from fatctl.state import repo
    from fatctl.state.models import RepairHold

    with session_scope(db) as session:
        pk = repo.get_agent(session, agent).id or 0
        if session.get(RepairHold, pk) is not None:
            return False
        session.add(RepairHold(agent_pk=pk, kind=OPERATOR, actor=actor[:100],
                               reason=clip(reason), since=now))  # fmt: skip
        repo.audit(session, actor=actor, action="repair.hold", target=agent,
                   detail={"reason": clip(reason)}, at=now)  # fmt: skip
        return True


def release(db: Engine, agent: str, actor: str, now: datetime) -> str:
    """Lift the agent's hold or page; the kind lifted. An agent not held is refused."""
    from fatctl.state import repo
    from fatctl.state.models import RepairAttempt, RepairHold

    with session_scope(db) as session:
        pk = repo.get_agent(session, agent).id or 0
        row = session.get(RepairHold, pk)
        if row is None:
            raise BadInput(f"agent {agent} is not held or paged: nothing to release")
        kind = row.kind
        session.delete(row)
        # The policy starts this agent's ladder afresh from here (`ladder.RELEASE`).
        note = clip(f"{kind} released by {actor}")
        session.add(RepairAttempt(agent_pk=pk, rung=RELEASE, started_at=now, finished_at=now,
                                  result=OK, detail=note))  # fmt: skip
        repo.audit(session, actor=actor, action="repair.release", target=agent,
                   detail={"released": kind}, at=now)  # fmt: skip
        return kind
