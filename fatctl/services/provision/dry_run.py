"""`provision --dry-run` and `destroy --dry-run`: the same checks and plans as a real run,
with nothing written and nothing changed at a cloud.

Provision walks the real validation (every refusal), renders and validates the user-data, and
asks the infra engine for its plan (read-only cloud calls). A new agent is created in a
transaction that is rolled back, so its name, keys and plan are those a real run would start
from, yet no row, lease or audit entry remains. Destroy runs its refusals and lists what it
would remove.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fatctl.domain import AgentState, ResourceChange
from fatctl.services.common.steps import PROVISION_STEPS
from fatctl.services.provision.cloud import checked_user_data, provision_spec
from fatctl.services.provision.dns import has_records
from fatctl.services.provision.flow import Options, resume_point, step_fate, validate_request
from fatctl.services.provision.preflight import destroy_settings
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.infra.engine import InfraEngine
    from fatctl.secrets import KeyRing
    from fatctl.services.agents.records import NewAgent
    from fatctl.state.models import Agent


@dataclass(frozen=True)
class PlannedRun:
    """What a run would do: each step's fate and each cloud resource's change."""

    agent: str
    state: str  # the agent's state now ("new" for one the run would create)
    steps: tuple[tuple[str, str], ...]  # (step, run|kept|skipped)
    changes: tuple[ResourceChange, ...]
    user_data_bytes: int = 0

    def row(self) -> dict[str, object]:
        return {
            "agent": self.agent,
            "state": self.state,
            "would_run": ", ".join(s for s, fate in self.steps if fate == "run") or "nothing",
            "changes": sum(1 for c in self.changes if c.action != "same"),
            "user_data_bytes": self.user_data_bytes,
        }

    def change_rows(self) -> list[dict[str, str]]:
        return [{"kind": c.kind, "name": c.name, "action": c.action, "detail": c.detail}
                for c in self.changes]  # fmt: skip


class _Discard(Exception):
    """Raised inside the validation's transaction so a new agent's rows are rolled back."""

    def __init__(self, planned: PlannedRun) -> None:
        self.planned = planned


def provision_steps(resume_from: int, ready: bool, skip: frozenset[str]) -> list[tuple[str, str]]:
    """Each step's fate in a run that resumes after step `resume_from` (the flow's own
    `resume_point` and `step_fate`), in the flow's order: DNS before the server."""
    if ready:
        return [(step, "kept") for step in PROVISION_STEPS]
    return [(step, step_fate(step, resume_from, skip)) for step in PROVISION_STEPS]


def preview_provision(
    db: Engine, ring: KeyRing, settings: Settings, infra: InfraEngine, request: NewAgent,
    opts: Options,
) -> PlannedRun:  # fmt: skip
    """What `provision` would do now; raises what it would refuse with."""

    from fatctl.state import repo

    name = request.validated().name
    with session_scope(db) as session:
        new = name is None or not repo.agent_exists(session, name)

    def look(session: Session, agent: Agent) -> None:
        raise _Discard(_planned(session, agent, settings, ring, infra, opts, new=new))

    try:
        # The actor only signs the audit entry of a new agent, which is rolled back with it.
        validate_request(db, ring, settings, request, "dry-run", opts, after_checks=look)
    except _Discard as done:
        return done.planned
    raise AssertionError("validation returned without reaching its checks")


def _planned(
    session: Session,
    agent: Agent,
    settings: Settings,
    ring: KeyRing,
    infra: InfraEngine,
    opts: Options,
    *,
    new: bool,
) -> PlannedRun:
    ready = agent.state == AgentState.READY.value and agent.last_step == "ready"
    resume_from = resume_point(agent.last_step, has_records(session, agent.id or 0))
    spec = provision_spec(session, agent, settings, ring, sandbox=opts.sandbox)
    user_data = checked_user_data(spec, validate=opts.validate)
    return PlannedRun(
        agent=agent.name,
        state="new" if new else agent.state,
        steps=tuple(provision_steps(resume_from, ready, opts.skip)),
        changes=infra.plan(spec).changes,
        user_data_bytes=len(user_data.encode()),
    )


@dataclass(frozen=True)
class DestroyRequest:
    name: str
    release_ips: bool = False
    purge_data: bool = False


def preview_destroy(
    db: Engine, ring: KeyRing, settings: Settings, infra: InfraEngine, request: DestroyRequest
) -> PlannedRun:
    """What `destroy` would remove now; raises what it would refuse with."""
    from sqlmodel import select

    from fatctl.services.common.specs import build_spec
    from fatctl.state import repo
    from fatctl.state.models import DnsRecord

    name, release_ips, purge_data = request.name, request.release_ips, request.purge_data
    destroy_settings(db, ring, settings, name, purge_data=purge_data)
    with session_scope(db) as session:
        agent = repo.get_agent(session, name)
        state = agent.state
        spec = build_spec(session, agent, settings)
        records = [(r.record_type, r.name, r.content) for r in session.exec(
            select(DnsRecord).where(DnsRecord.agent_pk == agent.id)).all()]  # fmt: skip
    if state == AgentState.DESTROYED.value:
        return PlannedRun(name, state, (("destroy", "kept"),), ())
    box = infra.status(spec)
    changes = [ResourceChange("server", name, "delete" if box else "same",
                              box.server_id if box else "not at the cloud")]  # fmt: skip
    ip_action = "delete" if release_ips else "same"
    changes += [ResourceChange("primary_ip", f"{name}-{family}", ip_action,
                               "released" if release_ips else "kept")
                for family in ("ipv4", "ipv6")]  # fmt: skip
    changes += [ResourceChange("dns_record", f"{kind} {fqdn}", "delete", content)
                for kind, fqdn, content in records]  # fmt: skip
    steps = [("dns", "run" if settings.domain else "skipped"), ("infra", "run"),
             ("data", "run" if purge_data else "skipped"), ("state", "run")]  # fmt: skip
    return PlannedRun(name, state, tuple(steps), tuple(changes))
