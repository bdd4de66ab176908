"""`fatctl reconcile --fix`: apply the safe repairs the diff marked, one at a time, each under
the agent's lease (so a repair never races a provision or destroy of the same agent) and each
recorded in the audit log as `reconcile.fix` with its outcome. A repair that fails is reported
and the others still run; nothing here deletes a server or a primary IP.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from fatctl.errors import FatctlError
from fatctl.services.common.audit import audit_change
from fatctl.services.common.leases import REPAIR_TTL_S, agent_lease
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
        self._h: Hcloud | None = None

    @property
    def dns(self) -> CloudflareDns:
        if self._dns is None:
            from fatctl.dns.cloudflare_dns import CloudflareDns

            self._dns = CloudflareDns(self.settings)
        return self._dns

    @property
    def h(self) -> Hcloud:
        if self._h is None:
            from fatctl.infra.hcloud.client import Hcloud

            self._h = Hcloud(self.settings)
        return self._h

    def known(self, agent: str) -> bool:
        from fatctl.state import repo

        with session_scope(self.db) as session:
            return bool(agent) and repo.agent_exists(session, agent)

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

            relabel_server(self.h, finding.ref, dict(finding.params))
            return f"relabelled server {finding.ref}"
        if finding.action == FW_DELETE:
            from fatctl.infra.hcloud.inventory import delete_firewall

            delete_firewall(self.h, finding.ref)
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
                row.update(result="ok", detail=fixer.apply(finding))
        except FatctlError as exc:
            row.update(result="failed", detail=exc.one_line())
        detail = {"resource": finding.resource, "fix": finding.action,
                  "finding": finding.detail, "done": row["detail"]}  # fmt: skip
        target = finding.agent if fixer.known(finding.agent) else "fleet"
        audit_change(db, actor, "reconcile.fix", target, str(row["result"]), detail)
        outcomes.append(row)
    return outcomes
