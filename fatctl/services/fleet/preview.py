"""Fleet previews: what applying infra would change, per agent, as one summary with an exit code.

Selection reads the state database (`--agents`, `--label k=v`, or every agent with infra when
nothing is named); each agent's `AgentSpec` is what it should be, the engine says what exists.
The hcloud engine reads the whole fleet with one list per kind (fatctl/infra/hcloud/fleet.py)
and diffs it with the same rules as the Pulumi program; the Pulumi engine runs one Automation
API preview per stack. One agent's failure is that agent's row, never the others' silence.

Exit codes (docs/exit-codes.md): 0 nothing would change, 3 changes pending, 1 an agent could
not be previewed, 2 bad input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fatctl.domain import AgentSpec, AgentState, Plan
from fatctl.errors import BadInput, FatctlError
from fatctl.infra.desired import desired_box
from fatctl.infra.engine import Capability, supports
from fatctl.infra.plan import compute_plan, replaces_live_box
from fatctl.infra.projects import split_by_project
from fatctl.services.common.targets import select_agents
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.infra.engine import InfraEngine

EXIT_NO_CHANGES = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CHANGES_PENDING = 3
ACTIONS = ("create", "update", "replace", "delete")
# States whose boxes have no infra to compare (yet, or any more): left out of the default set.
NO_INFRA = frozenset({AgentState.REQUESTED, AgentState.DESTROYING, AgentState.DESTROYED})


@dataclass(frozen=True)
class AgentPreview:
    agent: str
    plan: Plan | None = None
    error: str = ""

    @property
    def replaces_live(self) -> bool:
        return self.plan is not None and replaces_live_box(self.plan)

    @property
    def has_changes(self) -> bool:
        return self.plan is not None and self.plan.has_changes

    def counts(self) -> dict[str, int]:
        return {f"{a}s": self.plan.count(a) if self.plan else 0 for a in ACTIONS}

    def as_dict(self) -> dict[str, Any]:
        changes = [
            {"kind": c.kind, "name": c.name, "action": c.action, "detail": c.detail}
            for c in (self.plan.changes if self.plan else ())
            if c.action != "same"
        ]
        return {
            "agent": self.agent,
            **self.counts(),
            "replaces_live_box": self.replaces_live,
            "changes": changes,
            "error": self.error,
        }


@dataclass(frozen=True)
class FleetPreview:
    engine: str
    agents: tuple[AgentPreview, ...]

    @property
    def errors(self) -> list[AgentPreview]:
        return [a for a in self.agents if a.error]

    @property
    def changes_pending(self) -> bool:
        return any(a.has_changes for a in self.agents)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_FAILED
        return EXIT_CHANGES_PENDING if self.changes_pending else EXIT_NO_CHANGES

    def totals(self) -> dict[str, int]:
        out = {"agents": len(self.agents)}
        for action in ACTIONS:
            out[f"{action}s"] = sum(a.counts()[f"{action}s"] for a in self.agents)
        out["with_changes"] = sum(a.has_changes for a in self.agents)
        out["replacing_live_boxes"] = sum(a.replaces_live for a in self.agents)
        out["errors"] = len(self.errors)
        return out

    def payload(self) -> dict[str, Any]:
        """The JSON document CI reads (its shape is documented in docs/exit-codes.md)."""
        return {
            "engine": self.engine,
            "agents": [a.as_dict() for a in self.agents],
            "totals": self.totals(),
            "changes_pending": self.changes_pending,
            "exit_code": self.exit_code,
        }


def selection(names: Sequence[str], all_agents: bool, label: str | None) -> str:
    """Which selector was used; nothing named means the whole fleet (read-only, so safe)."""
    flags = (("agents", bool(names)), ("all", all_agents), ("label", label is not None))
    given = [name for name, on in flags if on]
    if len(given) > 1:
        raise BadInput("choose at most one of --all, --agents a,b or --label k=v")
    return given[0] if given else "all"


def select_specs(
    db: Engine,
    settings: Settings,
    *,
    names: Sequence[str] = (),
    all_agents: bool = False,
    label: str | None = None,
) -> tuple[list[AgentSpec], list[AgentPreview]]:
    """The selected agents' specs (sorted by name), and a failed row for each that has none."""
    from fatctl.services.common.specs import build_spec

    how = selection(names, all_agents, label)
    specs: list[AgentSpec] = []
    failed: list[AgentPreview] = []
    with session_scope(db) as session:
        agents = select_agents(session, names, label)
        if how != "agents":
            agents = [a for a in agents if AgentState(a.state) not in NO_INFRA]
        for agent in agents:
            try:
                specs.append(build_spec(session, agent, settings))
            except FatctlError as exc:
                failed.append(AgentPreview(agent.name, error=exc.one_line()))
    return specs, failed


def plan_fleet(
    engine: InfraEngine, specs: Sequence[AgentSpec], *, whole_fleet: bool = True
) -> dict[str, AgentPreview]:
    """Every spec's plan by the engine's cheapest route; failures become that agent's row.
    `whole_fleet=False` (agents named) lets the hcloud route ask for those agents only. Over
    several Hetzner projects each project is read with its own engine (token, budget)."""
    by_name = {spec.name: spec for spec in specs}
    out: dict[str, AgentPreview] = {}
    for one, names in split_by_project(engine, list(by_name)):
        out.update(_plan_project(one, [by_name[n] for n in names], whole_fleet))
    return out


def _plan_project(
    engine: InfraEngine, specs: Sequence[AgentSpec], whole_fleet: bool
) -> dict[str, AgentPreview]:
    if supports(engine, Capability.FLEET_PLAN):
        return _hcloud_fleet(engine, specs, whole_fleet)
    out: dict[str, AgentPreview] = {}
    for spec in specs:
        try:
            out[spec.name] = AgentPreview(spec.name, engine.plan(spec))
        except FatctlError as exc:
            out[spec.name] = AgentPreview(spec.name, error=exc.one_line())
    return out


def _hcloud_fleet(
    engine: InfraEngine, specs: Sequence[AgentSpec], whole_fleet: bool
) -> dict[str, AgentPreview]:
    from fatctl.infra.hcloud.fleet import observe_fleet

    if not specs:
        return {}
    view = observe_fleet(engine.hcloud_client(), [s.name for s in specs], whole_fleet=whole_fleet)
    out: dict[str, AgentPreview] = {}
    for spec in specs:
        if spec.name in view.problems:
            out[spec.name] = AgentPreview(spec.name, error=view.problems[spec.name])
        else:
            plan = compute_plan(spec.name, desired_box(spec), view.observed[spec.name])
            out[spec.name] = AgentPreview(spec.name, plan)
    return out


def preview(
    engine: InfraEngine,
    specs: Sequence[AgentSpec],
    failed: Sequence[AgentPreview] = (),
    *,
    whole_fleet: bool = True,
) -> FleetPreview:
    """The fleet's preview, rows sorted by agent name."""
    rows = {**plan_fleet(engine, specs, whole_fleet=whole_fleet), **{f.agent: f for f in failed}}
    return FleetPreview(engine.name, tuple(rows[name] for name in sorted(rows)))
