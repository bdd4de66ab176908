"""`fatctl reconcile`: gather the four views (database, Hetzner, Cloudflare, boxes), diff them
(`diff`, `diff_dns`), and with `--fix` apply the safe repairs (`fix`) and look again.

API cost is independent of the fleet's size: Hetzner is read with three label-selector
listings (servers, primary IPs, firewalls; paged by 50), Cloudflare with one tag-filtered
listing (5000 a page).
Health is asked of every live box at once (bounded fan-out over SSH). Pulumi stacks are
checked with `refresh --preview-only --expect-no-changes`, which writes no state.
A read-only run writes nothing, not even an audit event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from fatctl.dns.records import agent_tag, record_owner
from fatctl.errors import FatctlError
from fatctl.services.common.open_ops import OpView, open_ops
from fatctl.services.common.targets import select_agents, target_for
from fatctl.services.reconcile.diff import diff
from fatctl.services.reconcile.fix import apply_fixes
from fatctl.services.reconcile.views import (
    LIVE,
    BoxHealth,
    CloudFirewall,
    CloudIp,
    CloudServer,
    DbAgent,
    DnsRecord,
    Finding,
    StackDrift,
    Views,
    has_box,
)
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.remote.target import Target

HEALTH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Options:
    names: tuple[str, ...] = ()
    label: str | None = None  # k=v on agent columns, as `fatctl exec --label`
    health: bool = True
    health_command: str = "fat-health --json"
    parallel: int = 10
    connect_timeout: float = 5.0

    @property
    def scoped(self) -> bool:
        return bool(self.names) or self.label is not None


@dataclass
class Report:
    findings: list[Finding]
    fixes: list[dict[str, object]] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)  # views skipped, and why
    unchecked_clouds: list[str] = field(default_factory=list)  # of those, the clouds

    @property
    def clean(self) -> bool:
        """Nothing wrong, and both clouds looked at: a run without a token compared nothing
        with that cloud, so it cannot call the fleet clean (issue 16). `--no-health` is the
        operator's own narrowing, like `--agents`, and does not count."""
        return not self.findings and not self.unchecked_clouds


def db_view(db: Engine, settings: Settings, opts: Options) -> tuple[DbAgent, ...]:
    """The selected agents (every state: destroyed ones tell orphans apart) with the labels
    their servers should carry."""
    from fatctl.services.common.specs import build_spec

    with session_scope(db) as session:
        rows = select_agents(session, opts.names, opts.label)
        ops = open_ops(session)
        return tuple(
            DbAgent(
                name=a.name,
                state=a.state,
                last_step=a.last_step,
                server_id=a.server_id,
                ipv4=a.ipv4,
                ipv6=a.ipv6,
                server_type=a.server_type,
                runtime_version=a.runtime_version,
                engine=a.engine,
                labels=build_spec(session, a, settings).labels,
                **_open_op_fields(ops.get(a.id or 0)),
            )
            for a in rows
        )


def _open_op_fields(op: OpView | None) -> dict[str, str]:
    return {"open_op": op.describe(), "open_op_kind": op.kind} if op else {}


CloudView = tuple[tuple[CloudServer, ...], tuple[CloudIp, ...], tuple[CloudFirewall, ...]]


def cloud_view(settings: Settings) -> CloudView:
    from fatctl.infra.hcloud.client import Hcloud
    from fatctl.infra.hcloud.inventory import fleet_inventory

    # Every Hetzner project of the fleet, each with its own token and budget (ids are global).
    projects = [p.name for p in settings.hcloud_projects] or [settings.hcloud_project or ""]
    invs = [fleet_inventory(Hcloud(settings.for_project(p))) for p in projects]
    servers = tuple(
        CloudServer(s.id, s.name, s.server_type, s.status, s.ipv4, s.ipv6, dict(s.labels))
        for inv in invs
        for s in inv.servers
    )
    ips = tuple(
        CloudIp(i.id, i.name, i.family, i.ip, i.assignee_id, dict(i.labels))
        for inv in invs
        for i in inv.ips
    )
    fws = tuple(
        CloudFirewall(f.id, f.name, tuple(sorted(f.applied_to)), dict(f.labels))
        for inv in invs
        for f in inv.firewalls
    )
    return servers, ips, fws


def dns_view(settings: Settings) -> tuple[DnsRecord, ...]:
    from fatctl.dns.cloudflare_dns import CloudflareDns
    from fatctl.dns.cloudflare_inventory import tagged_records

    return tuple(
        DnsRecord(
            str(r["id"]),
            str(r.get("type", "")),
            str(r.get("name", "")),
            str(r.get("content", "")),
            (agent_tag(record_owner(r)),),  # the owner, by comment or by the older tags
        )
        for r in tagged_records(CloudflareDns(settings))
    )


def health_view(
    db: Engine, settings: Settings, agents: Sequence[DbAgent], opts: Options
) -> tuple[BoxHealth, ...]:
    """Every live box's health command, all at once (bounded fan-out); a box fatctl cannot
    even address (no pinned host key) is reported unreachable with the reason."""
    from fatctl.remote.fanout import fan_out

    live = [a for a in agents if a.state in LIVE and a.ipv4]
    targets, out = _targets(db, settings, live, opts.connect_timeout)
    results = fan_out(targets, opts.health_command, parallel=opts.parallel,
                      timeout=HEALTH_TIMEOUT_S)  # fmt: skip
    out += [parse_health(r.name, r.error, r.exit_code, r.stdout, r.stderr) for r in results]
    return tuple(sorted(out, key=lambda h: h.agent))


def _targets(
    db: Engine, settings: Settings, agents: Sequence[DbAgent], timeout: float
) -> tuple[list[Target], list[BoxHealth]]:
    from fatctl.state import repo

    targets: list[Target] = []
    unaddressable: list[BoxHealth] = []
    with session_scope(db) as session:
        for agent in agents:
            try:
                target = target_for(session, repo.get_agent(session, agent.name), settings)
            except FatctlError as exc:
                unaddressable.append(BoxHealth(agent.name, False, False, problem=exc.one_line()))
                continue
            targets.append(replace(target, connect_timeout=timeout))
    return targets, unaddressable


def parse_health(
    agent: str, error: str | None, exit_code: int | None, stdout: str, stderr: str
) -> BoxHealth:
    """A health command's result: `fat-health --json` prints one JSON object (last line)."""
    if error is not None:
        return BoxHealth(agent, False, False, problem=error)
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = None
    if not isinstance(report, dict):
        tail = stderr.strip().splitlines()[-1:] or [f"exit {exit_code}"]
        return BoxHealth(agent, True, False, problem=f"no health report: {tail[0][:200]}")
    healthy = exit_code == 0 and report.get("healthy") is True
    problems = "; ".join(str(p) for p in report.get("problems") or [])
    return BoxHealth(agent, True, healthy, str(report.get("runtime_version") or ""),
                     problems[:300] or ("" if healthy else f"exit {exit_code}"))  # fmt: skip


def stack_view(settings: Settings, db: Engine, agents: Sequence[DbAgent]) -> tuple[StackDrift, ...]:
    """Pulumi-managed agents only: each stack's refresh preview, one stack at a time (the
    CLI is the cost here, not the API)."""
    from fatctl.services.common.specs import build_spec
    from fatctl.state import repo

    chosen = [a for a in agents if a.engine == "pulumi" and has_box(a)]
    if not chosen:
        return ()
    from fatctl.infra.pulumi.engine import PulumiEngine

    engine = PulumiEngine(settings)
    out = []
    for agent in chosen:
        with session_scope(db) as session:
            spec = build_spec(session, repo.get_agent(session, agent.name), settings)
        try:
            plan = engine.drift(spec)
        except FatctlError as exc:
            out.append(StackDrift(agent.name, (), exc.one_line()))
            continue
        changes = tuple(
            f"{c.kind} {c.name} {c.action}" + (f": {c.detail}" if c.detail else "")
            for c in plan.changes
            if c.action != "same"
        )
        out.append(StackDrift(agent.name, changes))
    return tuple(out)


def gather(db: Engine, settings: Settings, opts: Options, *, earlier: Views | None = None) -> Views:
    """All views. After repairs, `earlier` lends its box health and Pulumi stack views: the
    repairs touch neither boxes nor stacks, and asking again would only cost time."""
    agents = db_view(db, settings, opts)
    servers, ips, fws = cloud_view(settings) if settings.hcloud_token else (None, None, None)
    records = dns_view(settings) if settings.cloudflare_api_token and settings.domain else None
    if earlier is not None:
        health, stacks = earlier.health, earlier.stacks
    else:
        health = health_view(db, settings, agents, opts) if opts.health else None
        stacks = stack_view(settings, db, agents)
    return Views(domain=settings.domain, agents=agents, servers=servers, ips=ips, firewalls=fws,
                 records=records, health=health, stacks=stacks, scoped=opts.scoped)  # fmt: skip


def reconcile(
    db: Engine, settings: Settings, opts: Options, *, fix: bool = False, actor: str = ""
) -> Report:
    """Findings (after repairs when `fix`: the fleet is looked at again, so what is reported
    is what is still wrong, not what we hope we fixed)."""
    views = gather(db, settings, opts)
    findings = diff(views)
    if not fix or not any(f.fixable for f in findings):
        return _report(findings, views)

    fixes = apply_fixes(db, settings, findings, actor)
    after = diff(gather(db, settings, opts, earlier=views))
    return _report(after, views, fixes)


def _report(
    findings: list[Finding], views: Views, fixes: list[dict[str, object]] | None = None
) -> Report:
    """What the run found, and what it did not look at."""
    clouds = unchecked_clouds(views)
    health = ["box health (--no-health)"] if views.health is None else []
    return Report(findings, fixes or [], clouds + health, clouds)


def unchecked_clouds(views: Views) -> list[str]:
    """The clouds this run could not look at (a setting is missing), and why."""
    out = []
    if views.servers is None:
        out.append("Hetzner (HCLOUD_TOKEN unset)")
    if views.records is None:
        out.append("Cloudflare (CLOUDFLARE_API_TOKEN or FATCTL_DOMAIN unset)")
    return out
