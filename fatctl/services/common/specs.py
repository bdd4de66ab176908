"""Build the `AgentSpec` for an agent from the database and the settings.

This is the one place that turns stored state into the pure input of the renderers, stacks
and engines. The host key's private half is included only when a key ring is given (it is
needed to render user-data, and nowhere else).

Golden images: when `fatctl image build` recorded an available snapshot for the agent's
runtime and Node versions, stock image and architecture, the spec boots the newest of them
(`image` = its id, `golden_image` = True: nothing installed at first boot); otherwise the stock
image with the install path; only provisioning and rebuilds ask for this (`golden=True`). The
choice reads the database, not Hetzner, so a provision costs no extra API call (issue 5's
budget); `fatctl image list` marks snapshots deleted at Hetzner gone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from fatctl.config import Settings
from fatctl.domain import AgentSpec, HostKeyPair, KeyRole, R2Location, ServicePlan, architecture_of
from fatctl.errors import BadInput
from fatctl.secrets import KeyRing
from fatctl.services.common.secret_names import host_key_secret_name
from fatctl.serving import ModelChoice, resolve_model
from fatctl.state import repo, secret_store
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.state.models import Agent


def newest_golden_image(session: Session, spec: AgentSpec) -> str | None:
    """The id of the newest available golden snapshot that fits `spec`, if any."""
    from sqlmodel import col, select

    from fatctl.state.models import GoldenImage

    query = (
        select(GoldenImage)
        .where(GoldenImage.state == "available", GoldenImage.image_id != "")
        .where(GoldenImage.runtime_version == spec.runtime_version)
        .where(GoldenImage.node_version == spec.node_version)
        .where(GoldenImage.base_image == spec.image)
        .where(GoldenImage.architecture == architecture_of(spec.server_type))
        .where(GoldenImage.project == _project_of(session, spec.name))
        .order_by(col(GoldenImage.created_at).desc(), col(GoldenImage.id).desc())
    )
    found = session.exec(query).first()
    return found.image_id if found else None


def _project_of(session: Session, name: str) -> str:
    """The agent's Hetzner project ("" the top level's). Provisioning places the agent before
    it renders; only preflight's check sees one not placed yet (NULL), and looks at ""."""
    from sqlmodel import select

    from fatctl.state.models import Agent

    found = session.exec(select(Agent.project).where(Agent.name == name)).first()
    return str(found or "")


def with_golden_image(session: Session, spec: AgentSpec) -> AgentSpec:
    """`spec` booting the newest fitting golden snapshot, or unchanged when there is none."""
    if spec.golden_image:
        return spec
    image_id = newest_golden_image(session, spec)
    return replace(spec, image=image_id, golden_image=True) if image_id else spec


def build_spec(
    session: Session,
    agent: Agent,
    settings: Settings,
    ring: KeyRing | None = None,
    *,
    golden: bool = False,
) -> AgentSpec:
    """The agent's spec. `golden`: boot the newest fitting golden image when one is recorded
    (provisioning and rebuilds ask for it; converge, render and plan describe the box as
    configured, so a new golden image never shows up as drift on existing boxes)."""
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
    plan = ServicePlan(owner.plan)
    spec = AgentSpec(
        name=agent.name,
        agent_id=agent.agent_id,
        owner_email=owner.email,
        plan=plan,
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
        model=model_of(agent, plan, settings),
        channels=tuple(sorted(c.kind for c in repo.channels(session, agent))),
        senders=tuple(sorted((s.kind, s.value) for s in repo.senders(session, agent))),
        telegram_api_root=settings.telegram_api_root,
        acme_email=settings.checked_acme_email,
        backup_recipient=agent.backup_recipient,
    )
    return with_golden_image(session, spec) if golden else spec


def model_of(agent: Agent, plan: ServicePlan, settings: Settings) -> ModelChoice | None:
    """The model the agent thinks with, or None while it cannot be known (a BYOK agent that has
    chosen none yet: provisioning refuses it, see `serving_problem`)."""
    try:
        choice = resolve_model(plan, agent.model, agent.model_base_url, settings.managed_model)
    except BadInput:
        return None
    if plan == ServicePlan.MANAGED and not agent.model and settings.managed_model_base_url:
        return replace(choice, base_url=settings.managed_model_base_url)
    return choice


def spec_for_agent(
    name: str,
    *,
    engine: Engine,
    settings: Settings,
    ring: KeyRing | None = None,
    golden: bool = False,
) -> AgentSpec:
    """The named agent's spec, read in a session of its own (see `build_spec`)."""
    with session_scope(engine) as session:
        return build_spec(session, repo.get_agent(session, name), settings, ring, golden=golden)


def sandbox_spec(spec: AgentSpec, sandbox: bool) -> AgentSpec:
    """The sandbox's boxes boot a golden image and have no ACME: say so in the spec (provision
    and converge render the same files for them)."""
    return replace(spec, golden_image=True, tls_internal=True) if sandbox else spec
