"""Agent records: create (with per-agent material), list, show, delete — the database side.

Cloud work (servers, DNS, boxes) belongs to provisioning and destroy; this module only decides
what fatctl knows about an agent, and audits every change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fatctl import validation
from fatctl.domain import AgentState, ServicePlan
from fatctl.errors import BadInput, StateError
from fatctl.names import friendly_name
from fatctl.secrets import KeyRing, random_token
from fatctl.services.agents.material import generate_host_key
from fatctl.services.common.secret_names import GATEWAY_TOKEN_SECRET, HOST_KEY_SECRET
from fatctl.serving import SenderKind, model_choice
from fatctl.state import repo, secret_store
from fatctl.state.db import session_scope
from fatctl.state.models import (
    Agent,
    Backup,
    Channel,
    DnsRecord,
    HostKey,
    LifecycleOp,
    RolloutStep,
    Sender,
    SshKey,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Engine
    from sqlmodel import Session


@dataclass(frozen=True)
class NewAgent:
    """Validated input for `agents create` / `provision`."""

    name: str | None
    owner_email: str
    plan: str
    server_type: str
    location: str
    image: str
    runtime_version: str
    model: str = ""  # provider/model; "" is the plan's default (BYOK must choose one)
    model_base_url: str = ""  # only for the custom provider

    def validated(self) -> NewAgent:
        try:
            plan = ServicePlan(self.plan).value
        except ValueError:
            raise BadInput(f"unknown plan {self.plan!r}: use managed or byok") from None
        return NewAgent(
            name=None if self.name is None else validation.agent_name(self.name),
            owner_email=validation.email(self.owner_email),
            plan=plan,
            server_type=validation.server_type(self.server_type),
            location=validation.location(self.location),
            image=validation.image(self.image),
            runtime_version=validation.version(self.runtime_version),
            model=self._model(),
            model_base_url=self.model_base_url,
        )

    def _model(self) -> str:
        if self.model:
            return model_choice(self.model, self.model_base_url).ref
        if self.model_base_url:
            raise BadInput("--base-url goes with --model custom/<model>")
        return ""


def create_agent(
    engine: Engine,
    ring: KeyRing,
    request: NewAgent,
    actor: str,
    *,
    check: Callable[[Session, Agent], None] | None = None,
) -> Agent:
    """Record a new agent in state `requested`, with its host key and gateway token sealed.

    All of it happens in one transaction: a failure leaves no partial agent behind. `check`
    sees the new rows before the commit; what it raises rolls all of them back (provision's
    refusals of an agent it could not render).
    """
    req = request.validated()
    with session_scope(engine) as session:
        name = req.name or friendly_name(lambda n: repo.agent_exists(session, n))
        if repo.agent_exists(session, name):
            raise BadInput(f"an agent named {name!r} already exists")
        owner = repo.get_or_create_owner(session, req.owner_email, req.plan)
        agent = Agent(
            name=name,
            agent_id=uuid.uuid4().hex[:16],
            owner_id=owner.id or 0,
            state=AgentState.REQUESTED.value,
            server_type=req.server_type,
            location=req.location,
            image=req.image,
            runtime_version=req.runtime_version,
            model=req.model,
            model_base_url=req.model_base_url,
        )
        session.add(agent)
        session.flush()
        # The seeds: the owner's signup address may always talk to their agent.
        session.add(Sender(agent_pk=agent.id or 0, kind=SenderKind.EMAIL.value,
                           value=req.owner_email.lower()))  # fmt: skip
        host_key = generate_host_key(f"fatctl-host-{name}")
        session.add(
            HostKey(
                agent_pk=agent.id or 0,
                key_type=host_key.pair.key_type,
                public_key=host_key.pair.public_key,
                fingerprint=host_key.fingerprint,
            )
        )
        secret_store.put(
            session, ring, agent_pk=agent.id, name=HOST_KEY_SECRET, value=host_key.private
        )
        secret_store.put(
            session, ring, agent_pk=agent.id, name=GATEWAY_TOKEN_SECRET, value=random_token()
        )
        if check is not None:
            check(session, agent)
        repo.audit(
            session,
            actor=actor,
            action="agent.create",
            target=name,
            detail={"owner": req.owner_email, "plan": req.plan, "type": req.server_type},
        )
    return agent


DELETABLE = frozenset({AgentState.REQUESTED.value, AgentState.DESTROYED.value})
# `--force` also forgets an agent whose destroy failed and cannot finish (the cloud refuses for
# good: project gone, server held elsewhere); what is left of it there, reconcile calls orphans.
FORCE_DELETABLE = DELETABLE | {AgentState.DESTROYING.value}


def delete_agent(engine: Engine, name: str, actor: str, *, force: bool = False) -> None:
    """Forget an agent that has no cloud resources (never provisioned, or destroyed), or with
    `force` one stuck `destroying`; a forced delete says so in the audit trail."""
    with session_scope(engine) as session:
        agent = repo.get_agent(session, name)
        if agent.state not in (FORCE_DELETABLE if force else DELETABLE):
            raise StateError(
                f"agent {name} is {agent.state}: it may own cloud resources",
                hint=_delete_hint(name, agent.state),
            )
        state = agent.state
        models = (HostKey, SshKey, DnsRecord, RolloutStep, Channel, Sender, Backup, LifecycleOp)
        for model in models:
            for row in session.exec(_rows_of(model, agent.id or 0)).all():
                session.delete(row)
        secret_store.delete_for_agent(session, agent.id or 0)
        session.flush()
        session.delete(agent)
        detail = {"forced": True, "state": state} if force else None
        repo.audit(session, actor=actor, action="agent.delete", target=name, detail=detail)


def _delete_hint(name: str, state: str) -> str:
    if state == AgentState.DESTROYING.value:
        return (f"rerun `fatctl destroy {name}` to finish; if the cloud can never let it, "
                f"`fatctl agents delete {name} --force` forgets it")  # fmt: skip
    return f"run `fatctl destroy {name}` first"


def _rows_of(model: type, agent_pk: int):
    from sqlmodel import select

    return select(model).where(model.agent_pk == agent_pk)  # type: ignore[attr-defined]
