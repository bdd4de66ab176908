"""The `dns` step, before the server: the box's public addresses, then its A/AAAA records.

Caddy orders the box's certificate as soon as it starts, and the ACME server resolves the name
then. Records created only after the server (the order before issue 17) could meet that first
order with NXDOMAIN, which resolvers then cache for the zone's negative TTL and Let's Encrypt
counts as a failed validation. Primary IPs carry the addresses and outlive any server, so an
engine that can make them first (`Capability.ADDRESSES_FIRST`) does, the records point at
them, and the `infra` step then creates the server on those IPs. An engine that cannot (the
Pulumi stack makes its IPs with its server) applies its whole box here, as the old order did,
and its `infra` step has nothing left to do.

A capacity fallback may still put the server elsewhere, on other IPs (primary IPs are bound to
a location): the `infra` step then points the records at the box's final addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fatctl.infra.engine import address_reserving
from fatctl.infra.projects import engine_in_project
from fatctl.services.fleet.placement import place
from fatctl.services.provision import cloud as pc
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from fatctl.infra.engine import InfraEngine
    from fatctl.services.provision.flow import Flow


def dns_upsert(flow: Flow) -> dict[str, object]:
    """The box's addresses (known, reserved now, or from applying the box), then its records."""
    ipv4, ipv6, how = _addresses(flow)
    changes = upsert_records(flow, ipv4, ipv6)
    return {"records": ", ".join(f"{c.name} {c.action}" for c in changes), "addresses": how}


def infra_step(flow: Flow) -> dict[str, object]:
    """The server on the addresses the records point at; the records follow the box when a
    capacity fallback gave it other ones."""
    if flow.applied is not None:  # the dns step applied the whole box (no address reserving)
        return {**flow.applied, "applied_by": "dns"}
    before = _known_addresses(flow)
    out = pc.infra_apply(flow)
    after = (str(out["ipv4"]), str(out["ipv6"]))
    if all(before) and after != before:
        changes = upsert_records(flow, *after)
        out["records"] = ", ".join(f"{c.name} {c.action}" for c in changes)
    return out


def _known_addresses(flow: Flow) -> tuple[str, str]:
    from fatctl.state import repo

    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        return agent.ipv4, agent.ipv6


def _project_engine(flow: Flow) -> InfraEngine:
    """The engine of the agent's Hetzner project (placed now if it has none yet), as the
    infra step will use: the IPs must be made where the server will be."""
    from fatctl.state import repo

    with session_scope(flow.db) as session:
        project = place(session, repo.get_agent(session, flow.name), flow.settings)
    return engine_in_project(flow.infra, project)


def _addresses(flow: Flow) -> tuple[str, str, str]:
    """(ipv4, ipv6, how they were learnt); reserved addresses are recorded on the agent."""
    from fatctl.state import repo

    known = _known_addresses(flow)
    if all(known):  # an earlier run made them (they are kept until the agent is destroyed)
        return (*known, "known")
    assert flow.spec is not None
    infra = _project_engine(flow)
    reserver = address_reserving(infra)
    if reserver is None:
        flow.applied = pc.infra_apply(flow)
        return str(flow.applied["ipv4"]), str(flow.applied["ipv6"]), "applied with the box"
    reserved = reserver.reserve_addresses(flow.spec)
    flow.addresses_reserved = True
    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        agent.ipv4, agent.ipv6 = reserved.ipv4, reserved.ipv6
        agent.primary_ipv4_id = reserved.primary_ipv4_id
        agent.primary_ipv6_id = reserved.primary_ipv6_id
        session.add(agent)
    return reserved.ipv4, reserved.ipv6, "reserved before the server"


def upsert_records(flow: Flow, ipv4: str, ipv6: str) -> list[Any]:
    """A/AAAA `<agent>.<domain>` at these addresses, owned by us; rows kept in state."""
    from fatctl.dns.cloudflare_dns import CloudflareDns

    with session_scope(flow.db) as session:
        hint = known_zone(session, flow.settings.domain)
    dns = CloudflareDns(flow.settings, zone_hint=hint)
    changes = dns.upsert(flow.name, ipv4, ipv6)
    record_dns(flow, dns.zone_id(), [(c.type, c.fqdn, c.content) for c in changes])
    return list(changes)


def known_zone(session: Any, domain: str) -> str:
    """The zone of records we already keep under `domain`: spares a zone lookup per process."""
    from sqlmodel import col, select

    from fatctl.state.models import DnsRecord

    query = select(DnsRecord.zone_id).where(col(DnsRecord.name).endswith(f".{domain}"))
    return str(session.exec(query.limit(1)).first() or "")


def has_records(session: Any, agent_pk: int) -> bool:
    from sqlmodel import select

    from fatctl.state.models import DnsRecord

    query = select(DnsRecord.id).where(DnsRecord.agent_pk == agent_pk)
    return session.exec(query.limit(1)).first() is not None


def record_dns(flow: Flow, zone_id: str, records: list[tuple[str, str, str]]) -> None:
    """Mirror the records in `dns_records` (type, name, content), replacing older rows."""
    from sqlmodel import select

    from fatctl.state import repo
    from fatctl.state.models import DnsRecord

    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        old = session.exec(select(DnsRecord).where(DnsRecord.agent_pk == agent.id)).all()
        for row in old:
            session.delete(row)
        session.flush()
        for rtype, name, content in records:
            session.add(DnsRecord(agent_pk=agent.id or 0, zone_id=zone_id, name=name,
                                  record_type=rtype, content=content))  # fmt: skip
