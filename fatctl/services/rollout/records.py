"""The rollout's database side: create it with its steps, move steps between phases, read back.

Each write is its own short transaction, so a step's `running` is durable before the box is
touched and its outcome is durable right after: a crash leaves exactly the truth behind.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fatctl.domain import RolloutPolicy, RolloutState, StepPhase
from fatctl.errors import NotFound
from fatctl.services.rollout.plan import Wave
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.state.models import Rollout, RolloutStep


def create(
    engine: Engine,
    *,
    kind: str,
    version: str,
    policy: RolloutPolicy,
    waves: Sequence[Wave],
    actor: str,
    per_host: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """The rollout row and one `pending` step per host, in one transaction.

    `per_host` gives a host its own target (converge: the digest of its files); `extra` is kept
    beside the policy (converge: the template source) for `resume` and `abort`."""
    from fatctl.state import repo
    from fatctl.state.models import Rollout, RolloutStep

    with session_scope(engine) as session:
        rollout = Rollout(
            kind=kind,
            target=version,
            policy=json.dumps({**dataclasses.asdict(policy), "extra": extra or {}}),
            state=RolloutState.RUNNING,
            actor=actor,
        )
        session.add(rollout)
        session.flush()
        assert rollout.id is not None
        names = [h for w in waves for h in w.hosts]
        agents = {a.name: a for a in repo.list_agents(session, names=names)}
        for wave in waves:
            for name in wave.hosts:
                agent_pk = agents[name].id
                assert agent_pk is not None
                session.add(
                    RolloutStep(
                        rollout_id=rollout.id,
                        agent_pk=agent_pk,
                        wave=wave.index,
                        phase=StepPhase.PENDING,
                        to_version=(per_host or {}).get(name, version),
                    )
                )
        repo.audit(
            session,
            actor=actor,
            action=f"rollout.{kind}",
            target=f"rollout:{rollout.id}",
            result="ok",
            detail={"version": version, "hosts": len(names)},
        )
        return rollout.id


def load(engine: Engine, rollout_id: int) -> tuple[Rollout, list[tuple[RolloutStep, str]]]:
    """The rollout and its steps with agent names, in wave then name order."""
    from sqlmodel import col, select

    from fatctl.state.models import Agent, Rollout, RolloutStep

    with session_scope(engine) as session:
        rollout = session.get(Rollout, rollout_id)
        if rollout is None:
            raise NotFound(f"no rollout {rollout_id}")
        rows = session.exec(
            select(RolloutStep, Agent.name)
            .join(Agent, col(Agent.id) == col(RolloutStep.agent_pk))
            .where(col(RolloutStep.rollout_id) == rollout_id)
            .order_by(col(RolloutStep.wave), col(Agent.name))
        ).all()
        return rollout, [(step, str(name)) for step, name in rows]


def policy_of(rollout: Rollout) -> RolloutPolicy:
    fields = {f.name for f in dataclasses.fields(RolloutPolicy)}
    data = {k: v for k, v in json.loads(rollout.policy or "{}").items() if k in fields}
    return RolloutPolicy(**data)


def extra_of(rollout: Rollout) -> dict[str, Any]:
    extra = json.loads(rollout.policy or "{}").get("extra")
    return extra if isinstance(extra, dict) else {}


def update_step(
    engine: Engine, step_id: int, runtime: tuple[int, str] | None = None, **values: Any
) -> None:
    """Set the step's fields (and the times its phase implies); with `runtime` (agent pk,
    version), also the agent's runtime in the same transaction: one write, not two, when a
    wave's hosts finish together."""
    from fatctl.state.models import RolloutStep, utcnow

    with session_scope(engine) as session:
        if runtime is not None:
            _set_runtime(session, *runtime)
        step = session.get(RolloutStep, step_id)
        assert step is not None
        if values.get("phase") == StepPhase.RUNNING and step.started_at is None:
            step.started_at = utcnow()
        elif values.get("phase") not in (None, StepPhase.RUNNING):
            step.finished_at = utcnow()
        if "error" in values:
            values["error"] = str(values["error"])[:500]
        for key, value in values.items():
            setattr(step, key, value)
        session.add(step)


def mark_running(engine: Engine, step_ids: list[int]) -> None:
    """Mark a wave's steps `running` (started now, unless a resumed one started earlier): one
    UPDATE statement, since it runs while the wave's SSH handshakes compete for the GIL."""
    from sqlalchemy import func, update

    from fatctl.state.models import RolloutStep, utcnow

    if not step_ids:
        return
    table = RolloutStep.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.id.in_(step_ids))
            .values(phase=StepPhase.RUNNING, started_at=func.coalesce(table.c.started_at, utcnow()))
        )


def set_runtime(engine: Engine, agent_pk: int, version: str) -> None:
    """The agent row says which version its box now serves."""

    with session_scope(engine) as session:
        _set_runtime(session, agent_pk, version)


def _set_runtime(session: Any, agent_pk: int, version: str) -> None:
    from fatctl.state.models import Agent

    agent = session.get(Agent, agent_pk)
    if agent is not None and version:
        agent.runtime_version = version
        session.add(agent)


def finish(engine: Engine, rollout_id: int, state: str, reason: str = "", actor: str = "") -> None:
    from fatctl.state import repo
    from fatctl.state.models import Rollout, utcnow

    with session_scope(engine) as session:
        rollout = session.get(Rollout, rollout_id)
        assert rollout is not None
        rollout.state = state
        rollout.reason = reason[:500]
        if state != RolloutState.RUNNING:
            rollout.finished_at = utcnow()
        session.add(rollout)
        if actor:
            repo.audit(
                session,
                actor=actor,
                action=f"rollout.{state}",
                target=f"rollout:{rollout_id}",
                result="ok" if state == RolloutState.COMPLETED else "failed",
                detail={"reason": reason},
            )


def step_rows(steps: Sequence[tuple[RolloutStep, str]]) -> list[dict[str, Any]]:
    """What `rollout show` and the final table print, one row per host."""
    return [
        {
            "agent": name,
            "wave": step.wave,
            "phase": step.phase,
            "from": step.from_version,
            "to": step.to_version,
            "snapshot": step.snapshot_id,
            "error": step.error,
        }
        for step, name in steps
    ]
