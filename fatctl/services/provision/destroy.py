"""`fatctl destroy`: DNS records, then the server and its stack; primary IPs and the customer's
R2 data survive unless asked otherwise. Idempotent and recorded: a rerun finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fatctl.domain import AgentState
from fatctl.services.common.leases import DESTROY_TTL_S, agent_lease
from fatctl.services.common.steps import Emit, StepLog
from fatctl.services.provision.preflight import destroy_settings
from fatctl.services.storage.data import purge_prefix
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.infra.engine import InfraEngine
    from fatctl.secrets import KeyRing


# The steps a destroy may run, in order (dns without a domain and data without --purge-data
# are left out of a run): what a progress view counts to.
DESTROY_STEPS = ("dns", "infra", "data", "state")


@dataclass(frozen=True)
class Destroyed:
    agent: str
    state: str
    steps: tuple[dict[str, object], ...]


def destroy(
    db: Engine,
    ring: KeyRing,
    settings: Settings,
    infra: InfraEngine,
    name: str,
    actor: str,
    *,
    release_ips: bool = False,
    purge_data: bool = False,
    emit: Emit = lambda kind, **fields: None,
) -> Destroyed:
    from fatctl.services.common.specs import build_spec
    from fatctl.state import repo

    # Refused before the agent is `destroying`: a refusal half-way left it there.
    destroy_settings(db, ring, settings, name, purge_data=purge_data)
    log = StepLog(db, name, actor, emit, flow="destroy")
    with lease(db, agent_lease(name), ttl_s=DESTROY_TTL_S):
        with session_scope(db) as session:
            agent = repo.get_agent(session, name)
            if agent.state == AgentState.DESTROYED.value:
                log.note("destroy", "unchanged", "already destroyed")
                return Destroyed(name, agent.state, tuple(log.results))
            repo.set_state(session, agent, AgentState.DESTROYING)
            spec = build_spec(session, agent, settings)
        if settings.domain:
            log.run("dns", lambda: _dns(settings, name))
        log.run("infra", lambda: _infra(infra, spec, release_ips))
        if purge_data:
            log.run("data", lambda: _purge(db, ring, settings, name))
        log.run("state", lambda: _forget(db, name, release_ips))
    return Destroyed(name, AgentState.DESTROYED.value, tuple(log.results))


def _dns(settings: Settings, name: str) -> dict[str, object]:
    from fatctl.dns.cloudflare_dns import CloudflareDns

    changes = CloudflareDns(settings).delete(name)
    return {"deleted": ", ".join(c.name for c in changes) or "none"}


def _infra(infra: InfraEngine, spec: object, release_ips: bool) -> dict[str, object]:
    infra.destroy(spec, release_ips=release_ips)  # type: ignore[arg-type]
    return {"primary_ips": "released" if release_ips else "kept"}


def _purge(db: Engine, ring: KeyRing, settings: Settings, name: str) -> dict[str, object]:
    """Delete the agent's R2 prefix, with the agent's own prefix-scoped credentials."""

    return {"objects_deleted": purge_prefix(db, ring, settings, name)}


def _forget(db: Engine, name: str, release_ips: bool) -> dict[str, object]:
    from sqlmodel import select

    from fatctl.state import repo
    from fatctl.state.models import DnsRecord

    with session_scope(db) as session:
        agent = repo.get_agent(session, name)
        for row in session.exec(select(DnsRecord).where(DnsRecord.agent_pk == agent.id)).all():
            session.delete(row)
        agent.server_id = agent.firewall_id = ""
        if release_ips:
            agent.primary_ipv4_id = agent.primary_ipv6_id = agent.ipv4 = agent.ipv6 = ""
        agent.last_step = ""
        repo.set_state(session, agent, AgentState.DESTROYED)
    return {"state": AgentState.DESTROYED.value}
