"""The pure diff for DNS records, box health and Pulumi stacks (see `diff.py` for
the rules on what is repaired automatically and why)."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping

from fatctl.services.reconcile.views import (
    DNS_DELETE,
    DNS_UPSERT,
    DOC,
    DRIFT,
    IN_FLIGHT,
    MISSING,
    ORPHAN,
    UNHEALTHY,
    BoxHealth,
    DbAgent,
    DnsRecord,
    Finding,
    StackDrift,
    Views,
    has_dns,
)

RecordsByAgent = Mapping[tuple[str, str], list[DnsRecord]]


def dns_findings(
    agents: Mapping[str, DbAgent], views: Views, records: Iterable[DnsRecord]
) -> list[Finding]:
    """Records tagged `fatctl`: orphans are deleted; each live agent's A/AAAA compared."""
    mine: dict[tuple[str, str], list[DnsRecord]] = defaultdict(list)
    out: list[Finding] = []
    for rec in records:
        owner = agents.get(rec.agent)
        if owner is not None and has_dns(owner) and rec.name == f"{owner.name}.{views.domain}":
            mine[(owner.name, rec.type)].append(rec)
        elif owner is not None and owner.state in IN_FLIGHT:
            continue  # its dns step is still to run and will adopt the record
        elif not views.scoped or owner is not None:
            why = f"agent {rec.agent} is {owner.state}" if owner else "no agent in the database"
            if owner is not None and has_dns(owner):
                why = f"not {owner.name}.{views.domain}"
            detail = f"{why} (points at {rec.content})"
            resource = f"dns {rec.type} {rec.name}"
            out.append(Finding(ORPHAN, resource, rec.agent, detail, action=DNS_DELETE, ref=rec.id))
    for agent in agents.values():
        if has_dns(agent):
            out += agent_dns(agent, views, mine)
    return out


def same_address(a: str, b: str) -> bool:
    """Equal as addresses (`2001:DB8:0::1` is `2001:db8::1`), else as text."""
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _problem(present: list[DnsRecord], rtype: str, want: str) -> tuple[str, str] | None:
    if not present:
        return MISSING, f"no {rtype} record (want {want})"
    elsewhere = sorted({r.content for r in present if not same_address(r.content, want)})
    if elsewhere:
        return DRIFT, f"points at {', '.join(elsewhere)}, recorded address is {want}"
    if len(present) > 1:
        return DRIFT, f"{len(present)} {rtype} records"
    return None


def agent_dns(agent: DbAgent, views: Views, mine: RecordsByAgent) -> list[Finding]:
    """A and AAAA of `<agent>.<domain>` against the recorded addresses. Repaired only while
    Hetzner agrees with the database on the address (else which one is right is a question)."""
    fqdn = f"{agent.name}.{views.domain}"
    cloud = next((s for s in views.servers or () if s.agent == agent.name), None)
    params = (("ipv4", agent.ipv4), ("ipv6", agent.ipv6))
    out: list[Finding] = []
    for rtype, family, want in (("A", "ipv4", agent.ipv4), ("AAAA", "ipv6", agent.ipv6)):
        problem = _problem(mine.get((agent.name, rtype), []), rtype, want) if want else None
        if problem is None:
            continue
        kind, detail = problem
        have = getattr(cloud, family) if cloud is not None else want
        if not same_address(have, want):
            advice = (
                f"database and Hetzner disagree ({want} vs {have or 'none'}): see {DOC}#ip-drift"
            )
            out.append(Finding(kind, f"dns {rtype} {fqdn}", agent.name, detail, advice=advice))
            continue
        out.append(
            Finding(
                kind,
                f"dns {rtype} {fqdn}",
                agent.name,
                detail,
                action=DNS_UPSERT,
                ref=agent.name,
                params=params,
            )
        )
    return out


def health_findings(agents: Mapping[str, DbAgent], health: Iterable[BoxHealth]) -> list[Finding]:
    """Unreachable or unhealthy boxes, and boxes running another version than recorded."""
    out: list[Finding] = []
    for box in health:
        agent = agents.get(box.agent)
        if agent is None:
            continue
        name = agent.name
        if not box.reachable:
            advice = f"`fatctl box status {name}`; see {DOC}#unreachable-box"
            out.append(
                Finding(UNHEALTHY, "box", name, f"unreachable: {box.problem}", advice=advice)
            )
        elif not box.healthy:
            advice = f"`fatctl status {name}`, then `fatctl ssh {name}` to look"
            out.append(Finding(UNHEALTHY, "box", name, f"unhealthy: {box.problem}", advice=advice))
        running, recorded = box.runtime_version, agent.runtime_version
        if box.reachable and running and recorded and running != recorded:
            detail = f"box runs {running}, database says {recorded}"
            advice = f"`fatctl upgrade --to {recorded} --agents {name}`"
            out.append(Finding(DRIFT, "runtime", name, detail, advice=advice))
    return out


def stack_findings(stacks: Iterable[StackDrift]) -> list[Finding]:
    """Pulumi stacks whose resources changed outside Pulumi, or whose check failed."""
    out: list[Finding] = []
    for stack in stacks:
        res = f"stack agent-{stack.agent}"
        advice = (
            f"`fatctl box plan {stack.agent}` shows what apply would change; undo the change "
            f"at Hetzner or adopt it with `pulumi refresh --stack agent-{stack.agent}`"
        )
        out += [Finding(DRIFT, res, stack.agent, c, advice=advice) for c in stack.changes]
        if stack.error:
            detail = f"drift check failed: {stack.error}"
            out.append(Finding(DRIFT, res, stack.agent, detail, advice=f"see {DOC}#pulumi"))
    return out
