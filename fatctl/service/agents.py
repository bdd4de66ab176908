"""What the API does to agents, apart from HTTP: create (record, then start the provision
workflow), read, list a page, and start the destroy workflow.

A create holds the agent's lease (`agent:<name>`, the one `fatctl provision` and the workflow
take) only while it checks and records the agent: a second create of the name meets the lease
or the row and is refused (409), before any write. The workflow starts after the lease is
released, so its own run of the flow takes it. Every refusal of `validate_request` (settings,
owner, renderable) comes before the row is written, as on the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fatctl.service import workflows
from fatctl.service.context import Runtime
from fatctl.service.errors import Conflict
from fatctl.services.common.leases import agent_lease
from fatctl.services.common.open_ops import refuse_if_open
from fatctl.services.common.steps import BOX_STEPS
from fatctl.services.provision.flow import Options, validate_request
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from fatctl.services.agents.records import NewAgent

CREATE_LEASE_TTL_S = 120.0
MAX_PAGE = 200


@dataclass(frozen=True)
class Started:
    name: str
    agent_id: str  # the agent's stable id (its R2 prefix), not the row's
    workflow_id: str


def create(rt: Runtime, request: NewAgent, actor: str) -> Started:
    """Record a new agent and start its provision workflow; 409 when the name is taken."""
    from fatctl.state import repo

    name = request.name
    assert name is not None
    opts = Options(skip=BOX_STEPS if rt.skip_box else frozenset(), sandbox=rt.settings.in_sandbox)
    with lease(rt.db, agent_lease(name), ttl_s=CREATE_LEASE_TTL_S):
        with session_scope(rt.db) as session:
            if repo.agent_exists(session, name):
                raise Conflict(f"agent {name} exists: pick another name")
        validate_request(rt.db, rt.ring, rt.settings, request, actor, opts)
    with session_scope(rt.db) as session:
        agent = repo.get_agent(session, name)
        row_id, stable_id = agent.id or 0, agent.agent_id
    return Started(name, stable_id, workflows.start_provision(request, row_id, actor))


class DestroyFailed(Conflict):
    """The agent's destroy workflow of this kind ended in an error: a new request of the same
    kind would only attach to it again, so the platform is told why, and what to send instead."""


def destroy(rt: Runtime, name: str, actor: str, *, release_ips: bool,
            no_backup: bool = False) -> Started:  # fmt: skip
    """Start (or find) the agent's destroy workflow; 404 for an unknown agent, 409 when that
    workflow failed (for a box that cannot be backed up, with the `no_backup` hint)."""
    from fatctl.state import repo

    with session_scope(rt.db) as session:
        agent = repo.get_agent(session, name)
        row_id, stable_id = agent.id or 0, agent.agent_id
        # 409 before any workflow: one that failed on the open op would stay failed under its
        # fixed id, and answer every DELETE after the op is finished with that old error.
        refuse_if_open(session, name, "destroy")
    earlier = workflows.workflow_state(workflows.destroy_id(name, row_id, no_backup=no_backup))
    if earlier is not None and earlier["status"] == "ERROR":
        raise DestroyFailed(f"agent {name}'s destroy failed: {earlier['error']}")
    wfid = workflows.start_destroy(name, row_id, actor, release_ips=release_ips,
                                  no_backup=no_backup)  # fmt: skip
    return Started(name, stable_id, wfid)


def describe(rt: Runtime, name: str) -> dict[str, Any]:
    """The agent's record and its workflows' status; 404 for an unknown agent."""
    from fatctl.state import repo

    with session_scope(rt.db) as session:
        agent = repo.get_agent(session, name)
        row = _row(agent, repo.owner_of(session, agent).email)
        row_id = agent.id or 0
    flows = (
        workflows.provision_id(name, row_id),
        workflows.destroy_id(name, row_id),
        workflows.destroy_id(name, row_id, no_backup=True),
    )
    row["workflows"] = [s for s in map(workflows.workflow_state, flows) if s is not None]
    return row


def page(rt: Runtime, after: str, limit: int) -> tuple[list[dict[str, Any]], str]:
    """Agents by name after `after`, at most `limit`; and the name to continue after ("" at
    the end). Keyset on the unique name: a page never repeats or skips an agent."""
    from sqlmodel import col, select

    from fatctl.state import repo
    from fatctl.state.models import Agent

    limit = max(1, min(limit, MAX_PAGE))
    with session_scope(rt.db) as session:
        query = select(Agent).where(col(Agent.name) > after).order_by(col(Agent.name))
        agents = list(session.exec(query.limit(limit + 1)).all())
        rows = [_row(a, repo.owner_of(session, a).email) for a in agents[:limit]]
    return rows, rows[-1]["name"] if len(agents) > limit else ""


def _row(agent: Any, owner: str) -> dict[str, Any]:
    return {"name": agent.name, "id": agent.agent_id, "owner_email": owner,
            "state": agent.state, "last_step": agent.last_step, "server_type": agent.server_type,
            "location": agent.location, "server_id": agent.server_id, "ipv4": agent.ipv4,
            "ipv6": agent.ipv6, "last_error": agent.last_error}  # fmt: skip
