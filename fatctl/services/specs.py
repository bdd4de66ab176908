"""Build the `AgentSpec` for an agent from the database and the settings.

This is the one place that turns stored state into the pure input of the renderers, stacks
and engines. The host key's private half is included only when a key ring is given (it is
needed to render user-data, and nowhere else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fatctl.config import Settings
from fatctl.domain import AgentSpec, HostKeyPair, KeyRole, R2Location, ServicePlan
from fatctl.secrets import KeyRing
from fatctl.services.material import host_key_secret_name
from fatctl.state import repo, secret_store
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.state.models import Agent


def build_spec(
    session: Session, agent: Agent, settings: Settings, ring: KeyRing | None = None
) -> AgentSpec:
    owner = repo.owner_of(session, agent)
    host_keys = []
    for hk in repo.host_keys(session, agent):
        private = ""
        if ring is not None:
            private = secret_store.get(
                session, ring, agent_pk=agent.id, name=host_key_secret_name(hk.key_type)
            ).reveal()
        host_keys.append(
            HostKeyPair(key_type=hk.key_type, public_key=hk.public_key, private_key_pem=private)
        )
    operator = [k.public_key for k in repo.active_keys(session, agent=None, role=KeyRole.OPERATOR)]
    customer = [k.public_key for k in repo.active_keys(session, agent=agent, role=KeyRole.CUSTOMER)]
    r2 = None
    if settings.r2_endpoint:
        r2 = R2Location(
            endpoint=settings.r2_endpoint,
            bucket=settings.r2_bucket,
            prefix=f"agents/{agent.agent_id}/",
        )
    return AgentSpec(
        name=agent.name,
        agent_id=agent.agent_id,
        owner_email=owner.email,
        plan=ServicePlan(owner.plan),
        domain=settings.domain or "agents.invalid",
        server_type=agent.server_type,
        location=agent.location,
        image=agent.image,
        runtime_version=agent.runtime_version,
        operator_keys=tuple(operator),
        customer_keys=tuple(customer),
        operator_cidrs=tuple(c.strip() for c in settings.operator_cidrs.split(",") if c.strip()),
        host_keys=tuple(host_keys),
        r2=r2,
    )


def spec_for_agent(
    name: str,
    *,
    engine: Engine | None = None,
    settings: Settings | None = None,
    ring: KeyRing | None = None,
) -> AgentSpec:
    """Convenience for commands: defaults come from the current CLI context."""
    if engine is None or settings is None:
        from fatctl.cli.context import ctx

        engine = engine or ctx().engine
        settings = settings or ctx().settings
    with session_scope(engine) as session:
        return build_spec(session, repo.get_agent(session, name), settings, ring)
