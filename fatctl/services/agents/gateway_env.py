"""The gateway's environment file (`gateway.env`, 0600 root): the only place on the box where
the gateway token, the model key and the channels' tokens live.

`compose` is pure: variable names and sealed values in, the file's text (as `Sensitive`) out.
`gateway_env` reads what an agent needs from the secret store: its gateway token, the model
key its plan pays with (the platform's global key when managed, the agent's own when BYOK)
and each channel's credentials. A missing key is refused naming the secret to set, so a BYOK
agent without its key never gets as far as creating a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fatctl.domain import AgentSpec, ServicePlan
from fatctl.errors import BadInput, NotFound
from fatctl.secrets import KeyRing
from fatctl.sensitive import Sensitive
from fatctl.services.common.secret_names import GATEWAY_TOKEN_SECRET
from fatctl.serving import CHANNEL_CREDENTIALS, ChannelKind, key_secret_name, resolve_model
from fatctl.state import repo, secret_store

if TYPE_CHECKING:
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.state.models import Agent

_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
# systemd's EnvironmentFile= reads `KEY=value` lines; a value with whitespace, quotes,
# backslashes or a newline would be parsed as something else, so such a value is refused.
_VALUE_RE = re.compile(r"[A-Za-z0-9._~+/=:@%,-]{1,4096}")


def compose(entries: Mapping[str, Sensitive]) -> Sensitive:
    """`KEY=value` lines, sorted; BadInput (never showing a value) for what would not parse."""
    lines = []
    for name, value in sorted(entries.items()):
        if not _NAME_RE.fullmatch(name):
            raise BadInput(f"environment variable name {name[:40]!r} is not valid")
        if not _VALUE_RE.fullmatch(value.reveal()):
            raise BadInput(f"the value for {name} has characters an environment file cannot hold")
        lines.append(f"{name}={value.reveal()}\n")
    return Sensitive("".join(lines))


def model_key_scope(spec: AgentSpec) -> tuple[bool, str]:
    """(agent-scoped?, secret name) of the key that pays for `spec`'s model."""
    assert spec.model is not None
    return spec.plan == ServicePlan.BYOK, key_secret_name(spec.model.provider)


def missing_model_key(session: Session, agent_pk: int, spec: AgentSpec) -> str | None:
    """How to set the model key when it is not stored, else None (no decryption needed)."""
    per_agent, name = model_key_scope(spec)
    found = secret_store.names(session, agent_pk=agent_pk if per_agent else None)
    if any(s.name == name for s in found):
        return None
    if per_agent:
        return f"agent {spec.name} has no {name}: set it with `fatctl model key {spec.name}`"
    return f"the platform key {name} is not set: `fatctl secrets set {name}` (global)"


def serving_problem(session: Session, agent: Agent, settings: Settings) -> str | None:
    """Why this agent could not serve its customer (no model chosen, no key stored), or None:
    provisioning asks before it creates anything."""
    from fatctl.services.common.specs import build_spec

    plan = ServicePlan(repo.owner_of(session, agent).plan)
    try:
        resolve_model(plan, agent.model, agent.model_base_url, settings.managed_model)
    except BadInput as exc:
        return f"agent {agent.name}: {exc.one_line()}"
    return missing_model_key(session, agent.id or 0, build_spec(session, agent, settings))


def gateway_env(session: Session, ring: KeyRing, agent_pk: int, spec: AgentSpec) -> Sensitive:
    """Everything the box's gateway reads from its environment, composed."""
    entries = {"OPENCLAW_GATEWAY_TOKEN": _get(session, ring, agent_pk, GATEWAY_TOKEN_SECRET)}
    if spec.model is not None:
        why = missing_model_key(session, agent_pk, spec)
        per_agent, name = model_key_scope(spec)
        if why is None:
            entries[spec.model.key_env] = _get(session, ring, agent_pk if per_agent else None, name)
        elif per_agent:  # BYOK: provisioning refused this already; a later apply must too
            raise BadInput(why)
        # Managed without the platform key: the box is built, its gateway runs, and the agent
        # answers once the operator sets the key and applies it (`status` says so meanwhile).
    for kind in spec.channels:
        for cred in CHANNEL_CREDENTIALS[ChannelKind(kind)]:
            entries[cred.env] = _get(session, ring, agent_pk, cred.secret)
    return compose(entries)


def _get(session: Session, ring: KeyRing, agent_pk: int | None, name: str) -> Sensitive:
    try:
        return secret_store.get(session, ring, agent_pk=agent_pk, name=name)
    except NotFound:
        raise BadInput(f"secret {name} is not stored; set it before applying") from None
