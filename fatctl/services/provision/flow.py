"""`fatctl provision`: one agent from nothing to a healthy box, as recorded, resumable steps.

validate (every refusal, before any write: settings, owner, renderable; see `preflight`) ->
reserve (lease, state `provisioning`) -> material -> render (+ validate) -> DNS A/AAAA at the
box's primary IPs, made first (see `provision.dns`: the records exist before the server boots
and Caddy orders its certificate) -> infra apply (the server on those IPs) -> SSH with the
pinned host key -> cloud-init done -> secrets over SSH -> [restore -> start] -> health gate
(HTTPS retried to its deadline) -> `ready`. Each step is idempotent; `Agent.last_step` says
which side effects are already done, so a rerun after a failure or a kill continues there (the
API calls of a finished infra or DNS step are not repeated; cheap in-memory steps and checks
are). Secrets go after cloud-init (not before, as DESIGN.md lists them): their directories
exist only once it is done.

Restore-before-start (`Options.restore_from`: "latest" or a backup's name; rebuild and resume
use it): `secrets` delivers everything but the gateway's environment, whose arrival is what
starts the gateway (its path unit; the unit's condition), so it never runs on an empty state;
`restore` has the box's `fat-backup` put the backup in place with the gateway stopped; `start`
delivers the environment. Without a backup to restore both are skipped. `continue_provision`
is the entry point for a recorded agent whose box must be (re)made under a caller's lease.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fatctl.clock import Clock, wall_clock
from fatctl.domain import AgentState, ServicePlan
from fatctl.errors import BadInput, FatctlError, StateError
from fatctl.pacing.poll import Backoff
from fatctl.services.common.https_probe import HTTPS_PORT
from fatctl.services.common.leases import PROVISION_TTL_S, agent_lease
from fatctl.services.common.steps import (
    BOX_STEPS,
    LATEST_BACKUP,
    PROVISION_STEPS,
    Emit,
    StepLog,
    step_index,
)
from fatctl.services.provision import box as pb
from fatctl.services.provision import cloud as pc
from fatctl.services.provision import dns as pd
from fatctl.services.provision import preflight
from fatctl.services.provision.box import close_pool
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.domain import AgentSpec
    from fatctl.infra.engine import InfraEngine
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.secrets import KeyRing
    from fatctl.services.agents.records import NewAgent
    from fatctl.state.models import Agent

# Side effects a rerun does not repeat once recorded as done.
RESUMABLE = ("infra", "dns", "secrets", "restore")


class ProvisionFailed(FatctlError):
    exit_code = 1


@dataclass
class Options:
    """How a run behaves; tests and the bench inject backoff, engines and skipped steps."""

    skip: frozenset[str] = frozenset()
    backoff: Backoff = field(default_factory=Backoff)
    validate: bool = True
    sandbox: bool = False  # golden image + Caddy's internal CA (the sandbox has no internet)
    emit: Emit = lambda kind, **fields: None
    clock: Clock = wall_clock  # calendar time of the run: credential freshness and expiry
    https_port: int = HTTPS_PORT  # the health gate's HTTPS port; tests serve on a free one
    restore_from: str | None = None  # None, LATEST_BACKUP or a backup's name: put back first
    # Hears the name a LATEST_BACKUP resolved to, before it is restored (a lifecycle op keeps it).
    chose_restore: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.restore_from is not None:
            self.restore_from = restore_point(self.restore_from)


def restore_point(value: str) -> str:
    """`latest`, or a backup's name as the box lists it (`<UTC stamp>-<kind>`; a key under
    `backups/` is accepted): checked here, before it could reach a shell."""
    name = value.strip().removeprefix("backups/").removesuffix(".tar.gz.age")
    if name == LATEST_BACKUP or re.fullmatch(r"\d{8}T\d{6}Z-[a-z][a-z0-9-]{0,23}", name):
        return name
    raise BadInput(f"restore from wants 'latest' or a backup name like "
                   f"20261207T030000Z-scheduled, not {value[:60]!r}")  # fmt: skip


@dataclass
class BoxSession:
    """The box connection a run keeps between its steps: the pool `wait_ssh` opened (closed
    when the run ends) and the target it reached (later steps of the same run reuse it)."""

    pool: Pool | None = None
    target: Target | None = None


@dataclass
class Flow:
    """Everything the steps share for one agent's run."""

    db: Engine
    ring: KeyRing
    settings: Settings
    infra: InfraEngine
    actor: str
    name: str
    opts: Options
    log: StepLog
    resume_from: int = -1
    spec: AgentSpec | None = None
    user_data: str = ""
    box: BoxSession = field(default_factory=lambda: BoxSession())
    addresses_reserved: bool = False  # the dns step made the primary IPs in this run
    applied: dict[str, object] | None = None  # the dns step applied the whole box (no reserving)

    @property
    def resume_from_name(self) -> str:
        return PROVISION_STEPS[self.resume_from] if self.resume_from >= 0 else "nothing"


@dataclass(frozen=True)
class Provisioned:
    agent: str
    state: str
    server_id: str
    ipv4: str
    ipv6: str
    fqdn: str
    steps: tuple[dict[str, object], ...]
    elapsed_s: float


def provision(
    db: Engine,
    ring: KeyRing,
    settings: Settings,
    infra: InfraEngine,
    request: NewAgent,
    actor: str,
    opts: Options | None = None,
) -> Provisioned:
    """Create (or continue) the agent and drive it to `ready`; raises on the first failed step."""

    opts = opts or Options()
    name = validate_request(db, ring, settings, request, actor, opts)
    log = StepLog(db, name, actor, opts.emit)
    log.note("validate", "ok", "input valid, agent recorded")
    with lease(db, agent_lease(name), ttl_s=PROVISION_TTL_S):
        flow = Flow(db, ring, settings, infra, actor, name, opts, log)
        if _reserve(flow):
            _run_steps(flow)
    return _result(flow)


def continue_provision(
    db: Engine,
    ring: KeyRing,
    settings: Settings,
    infra: InfraEngine,
    name: str,
    actor: str,
    opts: Options | None = None,
) -> Provisioned:
    """Drive a recorded agent on from its `last_step` to `ready` (rebuild after its server was
    reinstalled; resume of a suspended agent with `Options(restore_from=LATEST_BACKUP)`).
    Takes the agent's lease (a caller holding it shared, as a lifecycle op does, lends it)."""
    opts = opts or Options()
    preflight.provision_settings(settings, box=bool(BOX_STEPS - opts.skip))
    log = StepLog(db, name, actor, opts.emit)
    with lease(db, agent_lease(name), ttl_s=PROVISION_TTL_S):
        flow = Flow(db, ring, settings, infra, actor, name, opts, log)
        if _reserve(flow):
            _run_steps(flow)
    return _result(flow)


def validate_request(
    db: Engine,
    ring: KeyRing,
    settings: Settings,
    request: NewAgent,
    actor: str,
    opts: Options,
    after_checks: Callable[[Session, Agent], None] | None = None,
) -> str:
    """The agent's name: an existing row (same owner) is continued, a new one is created.
    Every refusal comes first, before the first write (the agent's row, its state, anything at
    a cloud): the settings the steps need, and whether the agent can be rendered (a new one is
    rolled back when it cannot). `after_checks` sees the agent once every check passed, inside
    the same transaction (a dry run looks there, then raises to roll a new agent back)."""
    from fatctl.services.agents.records import create_agent
    from fatctl.state import repo

    def provisionable(session: Session, agent: Agent) -> None:
        preflight.provision_settings(settings, box=bool(BOX_STEPS - opts.skip))
        preflight.renderable(session, agent, settings, sandbox=opts.sandbox)
        if after_checks is not None:
            after_checks(session, agent)

    req = request.validated()
    if req.name is not None:
        with session_scope(db) as session:
            if repo.agent_exists(session, req.name):
                agent = repo.get_agent(session, req.name)
                owner = repo.owner_of(session, agent).email
                if owner != req.owner_email:
                    raise BadInput(f"agent {req.name} belongs to {owner}, not {req.owner_email}")
                if agent.state in (AgentState.DESTROYING.value, AgentState.DESTROYED.value):
                    raise StateError(f"agent {req.name} is {agent.state}: use a new name")
                preflight.not_parked(agent)
                preflight.no_unfinished_op(session, agent)
                _refuse_unservable(session, agent, settings)
                provisionable(session, agent)
                return agent.name
    if req.plan == ServicePlan.BYOK.value:
        # The customer's key is sealed per agent, so it cannot exist before the agent does.
        raise BadInput(
            "a BYOK agent needs its key before provisioning: `fatctl agents create` it, "
            "`fatctl model key AGENT` (key on stdin), then `fatctl provision AGENT`"
        )
    return create_agent(db, ring, req, actor, check=provisionable).name


def _refuse_unservable(session: Session, agent: Agent, settings: Settings) -> None:
    """A BYOK agent without its model or key is refused before any cloud resource exists."""
    from fatctl.services.agents.gateway_env import serving_problem
    from fatctl.state import repo

    if repo.owner_of(session, agent).plan != ServicePlan.BYOK.value:
        return
    problem = serving_problem(session, agent, settings)
    if problem is not None:
        raise BadInput(problem)


def _reserve(flow: Flow) -> bool:
    """State `provisioning` under the lease; False when the agent is already ready."""
    from fatctl.state import repo

    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        if agent.state == AgentState.READY.value and agent.last_step == "ready":
            flow.log.note("reserve", "unchanged", "agent is already ready")
            return False
        flow.resume_from = resume_point(agent.last_step, pd.has_records(session, agent.id or 0))
        repo.set_state(session, agent, AgentState.PROVISIONING)
        agent.engine = flow.infra.name
        session.add(agent)
    flow.log.note("reserve", "ok", f"lease held; resuming after {flow.resume_from_name}")
    return True


def _steps(flow: Flow) -> list[tuple[str, object]]:
    return [
        ("material", pc.material),
        ("render", pc.render),
        ("dns", pd.dns_upsert),
        ("infra", pd.infra_step),
        ("ssh", pb.wait_ssh),
        ("cloud_init", pb.wait_cloud_init),
        ("secrets", pb.deliver_secrets),
        ("restore", pb.restore_state),
        ("start", pb.start_gateway),
        ("health", pb.health_gate),
    ]


def resume_point(last_step: str, has_records: bool) -> int:
    """The index a run resumes after. An older fatctl ran `infra` before `dns`: an agent it left
    after `infra` has no records yet, so it resumes after `render` (DNS, then an idempotent
    infra apply that adopts the box) instead of keeping a DNS step that never ran."""
    if last_step == "infra" and not has_records:
        return step_index("render")
    return step_index(last_step)


def step_fate(step: str, resume_from: int, skip: frozenset[str], *, restoring: bool = False) -> str:
    """What a run does with `step`: skipped (asked, `ready` while box steps are skipped, or
    `restore`/`start` with nothing to restore), kept (a resumable side effect an earlier run
    finished) or run. Also the dry run's answer.

    `start` also runs without a restore when an earlier run stopped between `secrets` and
    `start`: that run may have held the gateway's environment back for a restore, and a rerun
    without one must still deliver it (it changes nothing when the box has it)."""
    if step in skip or (step == "ready" and skip & BOX_STEPS):
        return "skipped"
    if step == "restore" and not restoring:
        return "skipped"
    held_before = step_index("secrets") <= resume_from < step_index("start")
    if step == "start" and not (restoring or held_before):
        return "skipped"
    if step in RESUMABLE and step_index(step) <= resume_from:
        return "kept"
    return "run"


def _run_steps(flow: Flow) -> None:
    restoring = flow.opts.restore_from is not None
    try:
        for step, fn in _steps(flow):
            fate = step_fate(step, flow.resume_from, flow.opts.skip, restoring=restoring)
            if fate == "skipped":
                why = "skipped by request" if step in flow.opts.skip else "nothing to restore"
                flow.log.note(step, "skipped", why)
            elif fate == "kept":
                flow.log.note(step, "kept", "done by an earlier run")
            else:
                flow.log.run(step, lambda fn=fn: fn(flow))  # type: ignore[misc]
        if step_fate("ready", flow.resume_from, flow.opts.skip) == "skipped":
            flow.log.note("ready", "skipped", "box steps skipped: state stays provisioning")
            return
        flow.log.run("ready", lambda: _ready(flow))
    finally:
        close_pool(flow)


def _ready(flow: Flow) -> dict[str, object]:
    from fatctl.state import repo

    with session_scope(flow.db) as session:
        repo.set_state(session, repo.get_agent(session, flow.name), AgentState.READY)
    return {"state": AgentState.READY.value}


def _result(flow: Flow) -> Provisioned:
    from fatctl.state import repo

    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        fqdn = f"{agent.name}.{flow.settings.domain or 'agents.invalid'}"
        return Provisioned(
            agent=agent.name,
            state=agent.state,
            server_id=agent.server_id,
            ipv4=agent.ipv4,
            ipv6=agent.ipv6,
            fqdn=fqdn,
            steps=tuple(flow.log.results),
            elapsed_s=flow.log.elapsed(),
        )
