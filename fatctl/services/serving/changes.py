"""The database side of each serving change, inside the caller's session (so a dry run can
roll it back). Each returns the audit entry's action and details: names and kinds, never a
key or token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fatctl.domain import ServicePlan
from fatctl.errors import BadInput, NotFound
from fatctl.secrets import KeyRing
from fatctl.sensitive import Sensitive
from fatctl.serving import (
    BYOK_PROVIDERS,
    CHANNEL_CREDENTIALS,
    ChannelKind,
    channel_secret,
    key_secret_name,
    model_choice,
    sender,
)
from fatctl.state import repo, secret_store
from fatctl.state.models import Channel, Sender

if TYPE_CHECKING:
    from sqlmodel import Session

    from fatctl.state.models import Agent


@dataclass(frozen=True)
class Change:
    """What one command changes, applied to an agent row within a session."""

    action: str  # the audit action, e.g. channel.add
    detail: dict[str, object]


def set_model(session: Session, agent: Agent, ref: str, base_url: str, plan: str) -> Change:
    """Choose the model (and, with `plan`, switch the owner between managed and BYOK)."""
    owner = repo.owner_of(session, agent)
    if plan:
        try:
            owner.plan = ServicePlan(plan).value
        except ValueError:
            raise BadInput(f"unknown plan {plan[:20]!r}: use managed or byok") from None
        session.add(owner)
    choice = model_choice(ref, base_url) if ref else None
    if (
        choice is not None
        and owner.plan == ServicePlan.BYOK
        and choice.provider not in BYOK_PROVIDERS
    ):
        raise BadInput(f"BYOK supports {', '.join(sorted(BYOK_PROVIDERS))}, not {choice.provider}")
    agent.model = choice.ref if choice else ""
    agent.model_base_url = choice.base_url if choice else ""
    session.add(agent)
    return Change("model.set", {"model": agent.model or "(plan default)", "plan": owner.plan})


def store_model_key(session: Session, ring: KeyRing, agent: Agent, key: Sensitive) -> Change:
    """Seal the customer's own key for their model's provider (BYOK)."""
    owner = repo.owner_of(session, agent)
    if owner.plan != ServicePlan.BYOK.value:
        raise BadInput(
            f"agent {agent.name} is on the managed plan: the platform key pays "
            "(`fatctl model set AGENT provider/model --plan byok` first)"
        )
    if not agent.model:
        raise BadInput(f"agent {agent.name} has no model yet: `fatctl model set` it first")
    provider = agent.model.split("/", 1)[0]
    name = key_secret_name(provider)
    secret_store.put(session, ring, agent_pk=agent.id, name=name, value=key)
    return Change("model.key", {"secret": name})


def add_channel(
    session: Session, ring: KeyRing, agent: Agent, kind: ChannelKind, values: list[Sensitive]
) -> Change:
    """Record the channel and seal its credentials (checked for shape, never echoed)."""
    creds = CHANNEL_CREDENTIALS[kind]
    if len(values) != len(creds):
        names = ", ".join(c.secret.split(":")[-1] for c in creds) or "nothing"
        raise BadInput(f"{kind.value} takes {len(creds)} line(s) on stdin: {names}")
    for cred, value in zip(creds, values, strict=True):
        channel_secret(cred, value.reveal())
    for cred, value in zip(creds, values, strict=True):
        secret_store.put(session, ring, agent_pk=agent.id, name=cred.secret, value=value)
    if not any(c.kind == kind.value for c in repo.channels(session, agent)):
        session.add(Channel(agent_pk=agent.id or 0, kind=kind.value))
    return Change("channel.add", {"kind": kind.value})


def remove_channel(session: Session, agent: Agent, kind: ChannelKind) -> Change:
    found = [c for c in repo.channels(session, agent) if c.kind == kind.value]
    if not found:
        raise NotFound(f"agent {agent.name} has no {kind.value} channel")
    for row in found:
        session.delete(row)
    secret_store.delete_named(session, agent.id or 0, [c.secret for c in CHANNEL_CREDENTIALS[kind]])
    return Change("channel.remove", {"kind": kind.value})


def add_sender(session: Session, agent: Agent, value: str, kind: str | None) -> Change:
    sender_kind, normalised = sender(value, kind)
    known = {(s.kind, s.value) for s in repo.senders(session, agent)}
    if (sender_kind.value, normalised) not in known:
        session.add(Sender(agent_pk=agent.id or 0, kind=sender_kind.value, value=normalised))
    return Change("sender.add", {"kind": sender_kind.value, "sender": normalised})


def remove_sender(session: Session, agent: Agent, value: str, kind: str | None) -> Change:
    sender_kind, normalised = sender(value, kind)
    rows = [s for s in repo.senders(session, agent)
            if s.kind == sender_kind.value and s.value == normalised]  # fmt: skip
    if not rows:
        raise NotFound(f"{normalised} is not an allowed sender of {agent.name}")
    for row in rows:
        session.delete(row)
    return Change("sender.remove", {"kind": sender_kind.value, "sender": normalised})
