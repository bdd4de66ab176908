"""`fatctl apply`: infra changes (server type, firewall rules, labels) across the fleet, in waves.

The input is a `FleetPreview` (the same plans `fatctl preview` shows). Before anything changes,
`guard` refuses a plan that would replace a live box unless the operator named that agent, and
refuses to go on when any selected agent could not be previewed. Agents with changes are then
applied in the rollout's waves (canaries alone, then batches) with its halt rule
(fatctl/services/rollout/plan.py): one failed canary, or more failures than `max_failures`,
stops the run and the rest is skipped. A resize is done step by step through hcloud (power off,
change type keeping the disk unless asked, power on), then the box must come back on SSH and
pass the health gate. Every step is an event and an audit record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fatctl.domain import AgentSpec, Plan, ResourceChange, RolloutPolicy, RolloutState, StepPhase
from fatctl.errors import BadInput, FatctlError, RemoteError
from fatctl.infra.engine import refreshing
from fatctl.infra.plan import resize_of
from fatctl.infra.projects import engine_for_agent
from fatctl.services.common.audit import audit_change
from fatctl.services.common.leases import agent_lease, box_step_ttl
from fatctl.services.fleet.preview import FleetPreview
from fatctl.services.rollout.plan import plan_waves, should_halt
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.domain import ChangeSink
    from fatctl.infra.engine import InfraEngine

EventFn = Callable[..., None]  # Output.event(kind, **fields)
GateFn = Callable[[str], str | None]  # agent -> None when healthy, else why not
COLUMNS = ("agent", "wave", "phase", "changes", "error")
MAX_WORKERS = 8


class ApplyFailed(FatctlError):
    """Nothing was changed because the plan could not be trusted (an agent failed preview)."""


@dataclass(frozen=True)
class Outcome:
    agent: str
    wave: int | None
    phase: str  # unchanged, succeeded, failed, unreachable, skipped
    changes: tuple[str, ...] = ()
    error: str = ""

    def row(self) -> dict[str, Any]:
        wave = "" if self.wave is None else self.wave
        return {"agent": self.agent, "wave": wave, "phase": self.phase,
                "changes": "; ".join(self.changes), "error": self.error}  # fmt: skip


@dataclass(frozen=True)
class Report:
    state: str  # completed, halted
    reason: str
    outcomes: tuple[Outcome, ...]

    @property
    def halted(self) -> bool:
        return self.state == RolloutState.HALTED

    def rows(self) -> list[dict[str, Any]]:
        return [o.row() for o in self.outcomes]


@dataclass
class ApplyRun:
    """What one `fatctl apply` needs; `make_engine` builds one engine per agent (its own sink)."""

    db: Engine
    actor: str
    event: EventFn
    make_engine: Callable[[ChangeSink], InfraEngine]
    gate: GateFn
    policy: RolloutPolicy = field(default_factory=RolloutPolicy)
    upgrade_disk: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def audit(self, action: str, target: str, result: str, **detail: object) -> None:
        with self.lock:  # SQLite takes one writer at a time; keep the trail's order readable
            audit_change(self.db, self.actor, action, target, result, detail)


def guard(fleet: FleetPreview, allow_replace: Collection[str]) -> None:
    """Refuse before anything changes: unpreviewable agents, unnamed live-box replacements."""
    if fleet.errors:
        first = fleet.errors[0]
        raise ApplyFailed(
            f"cannot preview {', '.join(a.agent for a in fleet.errors)} "
            f"({first.agent}: {first.error}); nothing applied"
        )
    unknown = sorted(set(allow_replace) - {a.agent for a in fleet.agents})
    if unknown:
        raise BadInput(f"--allow-replace names agents not selected: {', '.join(unknown)}")
    missing = [a.agent for a in fleet.agents if a.plan and _creates_server(a.plan)]
    if missing:
        # A server made here would boot without its user-data, secrets or DNS: not a box.
        raise BadInput(
            f"no server exists for {', '.join(missing)}: apply changes existing boxes only "
            "(run `fatctl provision` for them, or leave them out of the selection)"
        )
    refused = [a.agent for a in fleet.agents if a.replaces_live and a.agent not in allow_replace]
    if refused:
        raise BadInput(
            f"apply would replace the live box of {', '.join(refused)}: refused "
            "(review `fatctl preview`, then name each with --allow-replace AGENT)"
        )


def _creates_server(plan: Plan) -> bool:
    return any(c.kind == "server" and c.action == "create" for c in plan.changes)


def apply_fleet(run: ApplyRun, fleet: FleetPreview, specs: Sequence[AgentSpec]) -> Report:
    """Apply every agent with changes in waves; unchanged agents are listed, never touched."""
    by_name = {s.name: s for s in specs}
    plans = {a.agent: a.plan for a in fleet.agents if a.plan is not None and a.has_changes}
    outcomes = {a.agent: Outcome(a.agent, None, "unchanged") for a in fleet.agents}
    waves = plan_waves(sorted(plans), run.policy)
    run.event("apply.start", agents=len(plans), waves=len(waves), engine=fleet.engine)
    run.audit("apply.start", "fleet", "ok", agents=sorted(plans), engine=fleet.engine)
    state, reason = RolloutState.COMPLETED, ""
    for number, wave in enumerate(waves):
        run.event("wave.start", wave=wave.index, agents=list(wave.hosts))
        workers = max(1, min(MAX_WORKERS, len(wave.hosts)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(_agent, run, by_name[n], plans[n], wave.index) for n in wave.hosts
            ]
            for future in futures:
                done = future.result()
                outcomes[done.agent] = done
        phases = [o.phase for o in outcomes.values()]
        if should_halt(phases, run.policy, canary_wave=wave.is_canary):
            state, reason = RolloutState.HALTED, f"failures exceed policy after wave {wave.index}"
            for later in waves[number + 1 :]:
                for name in later.hosts:
                    outcomes[name] = Outcome(
                        name, later.index, StepPhase.SKIPPED, error=RolloutState.HALTED
                    )
            break
    run.event(f"apply.{state}", reason=reason)
    run.audit("apply.end", "fleet", state, reason=reason)
    ordered = tuple(outcomes[name] for name in sorted(outcomes))
    return Report(state, reason, ordered)


def _describe(change: ResourceChange) -> str:
    text = f"{change.action} {change.kind} {change.name}"
    return f"{text} ({change.detail})" if change.detail else text


def _agent(run: ApplyRun, spec: AgentSpec, plan: Plan, wave: int) -> Outcome:
    """One agent under its box lease (a rollout on the same box waits its turn, or fails)."""

    done: list[str] = []

    def sink(change: ResourceChange) -> None:
        if change.action != "same":
            done.append(_describe(change))
            run.event("apply.change", agent=spec.name, resource=change.kind, name=change.name,
                      action=change.action, detail=change.detail)  # fmt: skip

    phase, error = StepPhase.SUCCEEDED, ""
    try:
        with lease(run.db, agent_lease(spec.name), ttl_s=box_step_ttl(run.policy.health_timeout_s)):
            _work(run, spec, plan, run.make_engine(sink), done)
    except RemoteError as exc:
        phase, error = StepPhase.UNREACHABLE, exc.one_line()
    except FatctlError as exc:
        phase, error = StepPhase.FAILED, exc.one_line()
    run.audit("apply.agent", spec.name, phase, changes=done, error=error)
    run.event("agent.done", agent=spec.name, wave=wave, phase=phase, error=error)
    return Outcome(spec.name, wave, phase, tuple(done), error)


def _work(run: ApplyRun, spec: AgentSpec, plan: Plan, engine: InfraEngine, done: list[str]) -> None:
    engine = engine_for_agent(engine, spec.name)  # its own Hetzner project's engine
    resize = resize_of(plan)
    resized = False
    if resize is not None:
        resized = _resize(run, spec, engine, resize[1], done)
        if resized and (stateful := refreshing(engine)) is not None:
            stateful.refresh(spec)  # Pulumi's state learns the new type: `up` won't resize again
    engine.apply(spec)
    if resized:
        run.event("apply.step", agent=spec.name, step="health_gate", detail="waiting")
        why = run.gate(spec.name)
        run.audit("apply.health_gate", spec.name, "ok" if why is None else "failed", why=why)
        if why is not None:
            raise FatctlError(f"health gate after resize: {why}")
        done.append("health gate passed")


def _resize(run: ApplyRun, spec: AgentSpec, engine: InfraEngine, to: str, done: list[str]) -> bool:
    """The resize through hcloud (the Pulumi engine's operational side is the hcloud engine)."""
    from fatctl.infra.hcloud.fleet import resize

    handle = engine.hcloud_client()

    def step(name: str, detail: str) -> None:
        done.append(f"{name} {detail}".strip())
        run.event("apply.step", agent=spec.name, step=name, detail=detail)
        run.audit(f"apply.{name}", spec.name, "ok", detail=detail)

    return resize(handle, spec.name, to, upgrade_disk=run.upgrade_disk, step=step)
