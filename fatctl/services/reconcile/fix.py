"""`fatctl reconcile --fix`: apply the safe repairs the diff marked, one at a time, each under
the agent's lease (so a repair never races a provision or destroy of the same agent) and each
recorded in the audit log as `reconcile.fix` with its outcome. A repair that fails is reported
and the others still run; nothing here deletes a server or a primary IP.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from fatctl.errors import CloudError, FatctlError
from fatctl.services.common.audit import audit_change
from fatctl.services.common.leases import REPAIR_TTL_S, agent_lease
from fatctl.services.common.open_ops import open_op_view
from fatctl.services.reconcile.views import DNS_DELETE, DNS_UPSERT, FW_DELETE, RELABEL, Finding
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.dns.cloudflare_dns import CloudflareDns
    from fatctl.infra.hcloud.client import Hcloud


class Fixer:
    """The clients the repairs need, built on first use."""

    def __init__(self, db: Engine, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._dns: CloudflareDns | None = None
        self._hs: dict[str, Hcloud] = {}  # project -> its client

    @property
    def dns(self) -> CloudflareDns:
        if self._dns is None:
            from fatctl.dns.cloudflare_dns import CloudflareDns

            self._dns = CloudflareDns(self.settings)
        return self._dns

    def clients(self, agent: str = "") -> list[Hcloud]:
        """The client of the agent's recorded Hetzner project, else one per project of the
        fleet (one without projects), built on first use."""
        from fatctl.infra.hcloud.client import Hcloud

        names = [p.name for p in self.settings.hcloud_projects] or [""]
        if agent and self.settings.several_projects and self.known(agent):
            from fatctl.state import repo

            with session_scope(self.db) as session:
                placed = repo.get_agent(session, agent).project
            names = [placed] if placed is not None else names  # not placed: ask every project
        for name in names:
            if name not in self._hs:
                self._hs[name] = Hcloud(self.settings.for_project(name))
        return [self._hs[name] for name in names]

    def in_its_project(self, agent: str, act: Callable[[Hcloud], None]) -> None:
        """`act` in the project that holds the resource: the agent's, or for a resource no
        agent owns each project in turn (Hetzner's ids are unique across projects, and one
        that answers not_found does not hold it)."""
        clients = self.clients(agent)
        for h in clients[:-1]:
            try:
                return act(h)
            except CloudError as exc:
                if exc.code != "not_found":
                    raise
        return act(clients[-1])

    def known(self, agent: str) -> bool:
        from fatctl.state import repo

        with session_scope(self.db) as session:
            return bool(agent) and repo.agent_exists(session, agent)

    def open_op(self, agent: str) -> str:
        """The agent's unfinished lifecycle op, described ("" when none or no such agent)."""
        if not self.known(agent):
            return ""
        with session_scope(self.db) as session:
            view = open_op_view(session, agent)
            return view.describe() if view else ""

    def guard(self, agent: str) -> AbstractContextManager[object]:
        """The agent's lease when the agent exists (an orphan's name may be no one's)."""
        if not self.known(agent):
            return nullcontext()

        return lease(self.db, agent_lease(agent), ttl_s=REPAIR_TTL_S)

    def apply(self, finding: Finding) -> str:
        """Do the repair; returns what was done, for the audit detail."""
        if finding.action == DNS_DELETE:
            from fatctl.dns.cloudflare_inventory import delete_record

            delete_record(self.dns, finding.ref, finding.resource)
            return f"deleted {finding.resource}"
        if finding.action == DNS_UPSERT:
            addresses = dict(finding.params)
            changes = self.dns.upsert(finding.agent, addresses["ipv4"], addresses["ipv6"])
            done = [f"{c.name} {c.action}" for c in changes if c.action != "same"]
            return "; ".join(done) or "already right"
        if finding.action == RELABEL:
            from fatctl.infra.hcloud.inventory import relabel_server

            labels = dict(finding.params)
            self.in_its_project(finding.agent, lambda h: relabel_server(h, finding.ref, labels))
            return f"relabelled server {finding.ref}"
        if finding.action == FW_DELETE:
            from fatctl.infra.hcloud.inventory import delete_firewall

            self.in_its_project(finding.agent, lambda h: delete_firewall(h, finding.ref))
            return f"deleted {finding.resource}"
        raise ValueError(f"not a safe action: {finding.action!r}")


def _unique(findings: list[Finding]) -> list[Finding]:
    """One repair per target: an agent's A and AAAA findings are one upsert."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        if f.fixable and (f.action, f.ref) not in seen:
            seen.add((f.action, f.ref))
            out.append(f)
    return out


def apply_fixes(
    db: Engine, settings: Settings, findings: list[Finding], actor: str
) -> list[dict[str, object]]:
    """Every safe repair, each audited; returns one outcome row per repair."""

    fixer = Fixer(db, settings)
    outcomes: list[dict[str, object]] = []
    for finding in _unique(findings):
        row: dict[str, object] = {"agent": finding.agent or "-", "resource": finding.resource,
                                  "action": finding.action}  # fmt: skip
        try:
            with fixer.guard(finding.agent):
                held = fixer.open_op(finding.agent)  # opened since the diff looked
                if held:
                    row.update(result="skipped", detail=f"{held} is open")
                else:
                    row.update(result="ok", detail=fixer.apply(finding))
        except FatctlError as exc:
            row.update(result="failed", detail=exc.one_line())
        detail = {"resource": finding.resource, "fix": finding.action,
                  "finding": finding.detail, "done": row["detail"]}  # fmt: skip
        target = finding.agent if fixer.known(finding.agent) else "fleet"
        audit_change(db, actor, "reconcile.fix", target, str(row["result"]), detail)
        outcomes.append(row)
    return outcomes
