"""What a provision or a destroy would refuse, asked before either writes anything.

A run that stopped half-way on bad input (no operator key, a setting a later step needs) left
the agent recorded as `provisioning`, a server at Hetzner, or an agent stuck `destroying`,
behind an exit that says "bad input" (issue 16). So the steps' refusals are asked here first,
from the settings and the database alone: no cloud call, no write. The steps keep their own
checks; these only bring them forward.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from cloud_init.inputs import check_spec
from fatctl.dns.r2_credentials import r2_settings
from fatctl.domain import AgentState, architecture_of
from fatctl.errors import BadInput
from fatctl.infra.capacity import parse_fallbacks
from fatctl.services.common.open_ops import open_op
from fatctl.services.common.targets import check_ssh_settings
from fatctl.services.provision.cloud import provision_spec
from fatctl.services.storage.data import purge_credentials

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.secrets import KeyRing
    from fatctl.state.models import Agent


def provision_settings(settings: Settings, *, box: bool) -> None:
    """The settings the steps will need: a token for either engine, well-formed capacity
    fallbacks, the DNS step's domain and Cloudflare token and, when the box steps run, the SSH
    route and what R2 credentials are issued with (when the secrets step will issue some)."""
    for name in ("hcloud_token", "domain", "cloudflare_api_token"):
        settings.require(name)
    parse_fallbacks(settings.fallbacks)  # engines over several projects parse it only later
    if box:
        check_ssh_settings(settings)
        if settings.r2_endpoint and settings.cloudflare_account_id:
            r2_settings(settings)


def renderable(session: Session, agent: Agent, settings: Settings, *, sandbox: bool) -> None:
    """Refuse now what `render` would refuse later (no operator key, a domain or an R2 setting
    that is not a name, ...). Host keys are left out: fatctl makes them itself, and `material`
    replaces any that are missing."""
    if sandbox:
        sandbox_architecture(agent.name, agent.server_type)
    spec = provision_spec(session, agent, settings, None, sandbox=sandbox)
    check_spec(replace(spec, host_keys=()))


def sandbox_architecture(name: str, server_type: str) -> None:
    """The sandbox's boxes are x86-64 nspawn containers from an x86 golden image: an arm64 (cax)
    agent could not boot there, so it is refused before anything is made."""
    if architecture_of(server_type) != "x86":
        raise BadInput(
            f"agent {name} has the ARM server type {server_type}: the sandbox's boxes are "
            "x86-64 only, so use an x86 type (e.g. cx23) there"
        )


def destroy_settings(
    db: Engine, ring: KeyRing, settings: Settings, name: str, *, purge_data: bool
) -> None:
    """What destroy's steps need: a token for either engine, Cloudflare's when there are DNS
    records to remove, and with `--purge-data` the agent's R2 credentials."""
    settings.require("hcloud_token")
    if settings.domain:
        settings.require("cloudflare_api_token")
    if purge_data:
        purge_credentials(db, ring, settings, name)


def not_parked(agent: Agent) -> None:
    """A suspended or archived agent is not provisioned again: its state is in a backup that
    only `resume` puts back before the gateway starts (a plain provision would start it on an
    empty disk, and the box's timer would then back that up), and an archived one has no box
    or addresses left to come back to."""
    if agent.state == AgentState.SUSPENDED.value:
        raise BadInput(f"agent {agent.name} is suspended: `fatctl resume {agent.name}` brings "
                       "it back with its backup restored")  # fmt: skip
    if agent.state == AgentState.ARCHIVED.value:
        raise BadInput(f"agent {agent.name} is archived: it cannot be provisioned again; "
                       "`fatctl archive purge` removes it, or provision a new agent")  # fmt: skip


def no_unfinished_op(session: Session, agent: Agent) -> None:
    """An unfinished lifecycle op (rebuild, resume, ...) continues the provisioning itself,
    with its backup restored first: a plain provision would deliver gateway.env and start the
    gateway on the empty disk, and the op's rerun would then find the agent ready."""
    assert agent.id is not None
    op = open_op(session, agent.id)
    if op is not None:
        raise BadInput(f"agent {agent.name} has an unfinished {op.kind} (op {op.id})",
                       hint=f"finish it with `fatctl {op.kind} {agent.name}`")  # fmt: skip
