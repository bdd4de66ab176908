"""Provisioning steps on the control plane's side: material, render, infra apply (DNS, which
comes before the server, is `provision.dns`).

Each takes the run's `Flow` and returns a small detail dict for the step's record (names and
ids only, never secret values).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from fatctl.errors import FatctlError
from fatctl.infra.engine import fresh_creating
from fatctl.infra.projects import engine_in_project
from fatctl.services.agents.material import generate_host_key
from fatctl.services.backup.keys import ensure_backup_key
from fatctl.services.common.audit import audit_change
from fatctl.services.common.secret_names import (
    GATEWAY_TOKEN_SECRET,
    HOST_KEY_SECRET,
)
from fatctl.services.fleet.placement import place, record_where_it_went
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.domain import AgentSpec
    from fatctl.secrets import KeyRing
    from fatctl.services.provision.flow import Flow
    from fatctl.state.models import Agent


class RenderFailed(FatctlError):
    exit_code = 1


def material(flow: Flow) -> dict[str, object]:
    """Host key and gateway token exist (create_agent made them); make what is missing, and
    the agent's backup key (age identity sealed, recipient in `agents.backup_recipient`)."""
    from fatctl.secrets import random_token
    from fatctl.state import repo, secret_store
    from fatctl.state.models import HostKey

    made = []
    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        pk = agent.id or 0
        have = {s.name for s in secret_store.names(session, agent_pk=pk)}
        if not repo.host_keys(session, agent) or HOST_KEY_SECRET not in have:
            key = generate_host_key(f"fatctl-host-{agent.name}")
            for old in repo.host_keys(session, agent):
                session.delete(old)
            session.flush()
            pair = key.pair
            session.add(HostKey(agent_pk=pk, key_type=pair.key_type, public_key=pair.public_key,
                                fingerprint=key.fingerprint))  # fmt: skip
            secret_store.put(
                session, flow.ring, agent_pk=pk, name=HOST_KEY_SECRET, value=key.private
            )
            made.append("host-key")
        if GATEWAY_TOKEN_SECRET not in have:
            token = random_token()
            secret_store.put(
                session, flow.ring, agent_pk=pk, name=GATEWAY_TOKEN_SECRET, value=token
            )
            made.append("gateway-token")
        if ensure_backup_key(session, flow.ring, agent) == "backup-identity":
            made.append("backup-identity")
    return {"generated": ",".join(made) or "none (reused)"}


def provision_spec(
    session: Session, agent: Agent, settings: Settings, ring: KeyRing | None, *, sandbox: bool
) -> AgentSpec:
    """The spec a provision renders (host keys' private halves only with `ring`)."""
    from fatctl.services.common.specs import build_spec, sandbox_spec

    # The newest golden image recorded for the agent's runtime, else the stock install path.
    return sandbox_spec(build_spec(session, agent, settings, ring, golden=True), sandbox)


def checked_user_data(spec: AgentSpec, *, validate: bool) -> str:
    """The spec's user-data, checked by cloud-init's real schema validator when asked."""
    from cloud_init.render import render_user_data

    user_data = render_user_data(spec)
    if validate:
        from cloud_init.validate import validate_user_data

        problems = validate_user_data(user_data)
        if problems:
            raise RenderFailed(f"rendered user-data is invalid: {problems[0]}")
    return user_data


def render(flow: Flow) -> dict[str, object]:
    """The spec from the database, user-data from the spec, checked by the real validators."""
    from fatctl.state import repo

    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        # Placed first: the golden image the spec boots is the one in the agent's own project
        # (a snapshot boots servers only in the project that holds it).
        place(session, agent, flow.settings)
        flow.spec = provision_spec(session, agent, flow.settings, flow.ring,
                                   sandbox=flow.opts.sandbox)  # fmt: skip
    flow.user_data = checked_user_data(flow.spec, validate=flow.opts.validate)
    return {"user_data_bytes": len(flow.user_data.encode()), "validated": flow.opts.validate}


def infra_apply(flow: Flow) -> dict[str, object]:
    """Create or adopt the server and its primary IPs; remember ids and addresses."""
    from fatctl.services.access import fleet_key_ids
    from fatctl.state import repo

    assert flow.spec is not None
    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        # Only a hint: the fresh path is duplicate-safe even when it is wrong (Hetzner names are
        # unique, a taken one sends it down the adopt path); the hint spares the lookups.
        # IPs the dns step reserved in this run are the engine's to assign: still fresh.
        fresh = flow.addresses_reserved or not (
            agent.server_id or agent.primary_ipv4_id or agent.last_error
        )
        project = place(session, agent, flow.settings)  # several Hetzner projects: one with room
    infra = engine_in_project(flow.infra, project)
    creator = fresh_creating(infra)
    fleet_key_ids.seed(flow.db, infra)  # so the fleet keys need no listing (issue 5)
    apply = infra.apply if creator is None else creator.apply_fresh if fresh else creator.apply_new
    info = apply(flow.spec, user_data=flow.user_data)
    fleet_key_ids.record(flow.db, infra, flow.spec)
    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        agent.server_id, agent.ipv4, agent.ipv6 = info.server_id, info.ipv4, info.ipv6
        agent.primary_ipv4_id, agent.primary_ipv6_id = info.primary_ipv4_id, info.primary_ipv6_id
        agent.firewall_id = info.firewall_id
        moved = record_where_it_went(agent, info.server_type, info.location)  # capacity fallback
        session.add(agent)
    out: dict[str, object] = {"server_id": info.server_id, "ipv4": info.ipv4, "ipv6": info.ipv6}
    if moved:
        flow.spec = replace(flow.spec, server_type=info.server_type, location=info.location)
        audit_change(flow.db, flow.actor, "provision.placed", flow.name, "ok", {"placed": moved})
        out["placed"] = moved
    if project:
        out["project"] = project
    return out
