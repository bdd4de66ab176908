"""Convergence checks after a killed run and its rerun, read from the emulators' inventories
(admin endpoints: no API budget spent, nothing counted) and the state database.

Each check returns a `Verdict`: problems found (empty = converged), duplicates (resources
beyond the one expected of a kind) and leaks (resources no agent accounts for).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.harness import DOMAIN, Lab


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0
    leaks: int = 0

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def count(self, what: str, found: int, wanted: int) -> None:
        """Exactly `wanted` of `what`: more is a duplicate, fewer a missing piece."""
        self.duplicates += max(0, found - wanted) if wanted else 0
        self.leaks += found if not wanted else 0
        self.expect(found == wanted, f"{found} {what}, wanted {wanted}")


def _mine(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [i for i in items if (i.get("labels") or {}).get("agent") == name]


def cloud_of(lab: Lab, name: str) -> dict[str, list[dict[str, Any]]]:
    inv = lab.hetzner.inventory()
    fqdn = f"{name}.{DOMAIN}"
    records = [r for r in lab.cloudflare.records() if r["name"] == fqdn]
    return {
        "servers": _mine(inv["servers"], name),
        "primary_ips": _mine(inv["primary_ips"], name),
        "firewalls": _mine(inv["firewalls"], name),
        "a": [r for r in records if r["type"] == "A"],
        "aaaa": [r for r in records if r["type"] == "AAAA"],
    }


def name_of(value: Any) -> str:
    """A stored reference (the emulator's inventory keeps a location or type by name)."""
    return str(value["name"] if isinstance(value, dict) else value)


def servers_where(found: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str | None]]:
    """The servers of a `cloud_of` listing as (name, location, `op` label): the label is set
    only on a move's replacement until it is promoted."""
    return [(s["name"], name_of(s["location"]), (s.get("labels") or {}).get("op"))
            for s in found["servers"]]  # fmt: skip


def agent_row(lab: Lab, name: str) -> Any:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(lab.db) as session:
        if not repo.agent_exists(session, name):
            return None
        row = repo.get_agent(session, name)
        session.expunge(row)
        return row


def secrets_of(lab: Lab, name: str) -> dict[str, str]:
    """Digests of the agent's decrypted secrets (never the values themselves)."""
    from fatctl.state import repo, secret_store
    from fatctl.state.db import session_scope

    with session_scope(lab.db) as session:
        if not repo.agent_exists(session, name):
            return {}
        agent = repo.get_agent(session, name)
        out = {}
        for s in secret_store.names(session, agent_pk=agent.id):
            value = secret_store.get(session, lab.ring, agent_pk=agent.id, name=s.name)
            out[s.name] = hashlib.sha256(value.reveal().encode()).hexdigest()
        keys = repo.host_keys(session, agent)
        out["host-key.pub"] = ",".join(sorted(k.public_key for k in keys))
        return out


def leases(lab: Lab) -> list[str]:
    from sqlmodel import Session, select

    from fatctl.state.models import Lease

    with Session(lab.db) as session:
        return [row.name for row in session.exec(select(Lease)).all()]


def unfinished_step(lab: Lab, name: str, flow: str) -> str:
    """The step the audit trail shows started but with no outcome yet ("" if none): where a
    killed run was inside a side effect."""
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(lab.db) as session:
        trail = [e for e in repo.audit_trail(session, target=name, limit=1000)
                 if e.action.startswith(f"{flow}.")]  # fmt: skip
        if trail and trail[0].result == "started":
            return trail[0].action.removeprefix(f"{flow}.")
        return ""


def provisioned(
    lab: Lab, name: str, before: dict[str, str], end: tuple[str, str] = ("provisioning", "infra")
) -> Verdict:
    """One server, one v4+v6 pair on it, one firewall, one A and one AAAA at the pair, the row
    agreeing with the cloud, secrets as before the kill, no lease left."""
    v = Verdict()
    found = cloud_of(lab, name)
    for kind, wanted in (("servers", 1), ("firewalls", 1), ("a", 1), ("aaaa", 1)):
        v.count(f"{kind} of {name}", len(found[kind]), wanted)
    families = Counter(ip["type"] for ip in found["primary_ips"])
    v.count(f"ipv4 of {name}", families["ipv4"], 1)
    v.count(f"ipv6 of {name}", families["ipv6"], 1)
    after = secrets_of(lab, name)
    lost = [k for k in before if before[k] != after.get(k)]
    v.expect(not lost, f"secrets changed by the rerun: {lost}")
    v.expect(not leases(lab), f"leases left: {leases(lab)}")
    row = agent_row(lab, name)
    if row is None or len(found["servers"]) != 1:
        v.expect(row is not None, f"no agent row {name}")
        return v
    server = found["servers"][0]
    ip_ids = {str(ip["id"]) for ip in found["primary_ips"]}
    v.expect(str(server["id"]) == row.server_id, f"row says server {row.server_id}")
    v.expect({row.primary_ipv4_id, row.primary_ipv6_id} == ip_ids, "row's primary IP ids differ")
    v.expect(all(str(ip.get("assignee_id")) == str(server["id"]) for ip in found["primary_ips"]),
             "a primary IP is not on the server")  # fmt: skip
    dns = {r["type"]: r["content"] for r in found["a"] + found["aaaa"]}
    v.expect(dns == {"A": row.ipv4, "AAAA": row.ipv6}, f"DNS {dns} vs row {row.ipv4} {row.ipv6}")
    # `end`: (state, last step); with --no-box the flow ends after infra, short of `ready`.
    v.expect((row.state, row.last_step, row.last_error) == (*end, ""),
             f"row is {row.state}/{row.last_step} error={row.last_error!r}")  # fmt: skip
    return v


def destroyed(lab: Lab, name: str, released: bool = False) -> Verdict:
    """Nothing left but what destroy keeps by design: the two primary IPs, unless released."""
    v = Verdict()
    found = cloud_of(lab, name)
    for kind in ("servers", "firewalls", "a", "aaaa"):
        v.count(f"{kind} of destroyed {name}", len(found[kind]), 0)
    families = Counter(ip["type"] for ip in found["primary_ips"])
    v.count(f"kept ipv4 of {name}", families["ipv4"], 0 if released else 1)
    v.count(f"kept ipv6 of {name}", families["ipv6"], 0 if released else 1)
    v.expect(all(not ip.get("assignee_id") for ip in found["primary_ips"]), "kept IP assigned")
    row = agent_row(lab, name)
    v.expect(row is not None and row.state == "destroyed", f"row is {row and row.state}")
    v.expect(not leases(lab), f"leases left: {leases(lab)}")
    return v


def strays(lab: Lab, agents: set[str]) -> Verdict:
    """Resources that belong to no known agent: leaks, whatever the scenario."""
    v = Verdict()
    inv = lab.hetzner.inventory()
    for kind in ("servers", "primary_ips", "firewalls"):
        lost = [i for i in inv[kind] if (i.get("labels") or {}).get("agent") not in agents]
        v.count(f"{kind} of no agent", len(lost), 0)
    names = {f"{a}.{DOMAIN}" for a in agents}
    lost_dns = [r for r in lab.cloudflare.records() if r["name"] not in names]
    v.count("DNS records of no agent", len(lost_dns), 0)
    return v


@dataclass
class Tally:
    """Counts over all scenarios of one test, for the figures and the final assertion."""

    agents: set[str]
    runs: int = 0
    killed: int = 0
    converged: int = 0
    duplicates: int = 0
    leaks: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, name: str, how: str, killed: bool, verdict: Verdict) -> None:
        self.agents.add(name)
        self.runs += 1
        self.killed += killed
        self.converged += not verdict.problems
        self.absorb(verdict, f"{name} killed at {how}")

    def absorb(self, verdict: Verdict, where: str = "after all runs") -> None:
        self.duplicates += verdict.duplicates
        self.leaks += verdict.leaks
        if verdict.problems:
            self.failures.append(f"{where}: {verdict.problems}")

    def report(self, figure: Any, flow: str) -> None:
        figure(f"{flow}: steps killed", self.killed)
        figure(f"{flow}: runs converged", f"{self.converged}/{self.runs}")
        figure(f"{flow}: duplicates found", self.duplicates)
        figure(f"{flow}: leaked resources", self.leaks)
