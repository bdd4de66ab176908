"""`fatctl status`: the database's view, the cloud's view and the box's own health, side by side.

Cloud and box views are best effort per agent: an unreachable box or a failed API call shows
up in that agent's row (`cloud`/`health` columns), never as a failure of the whole command.
A box that presents a host key other than the pinned one is different: that is an attack or a
box rebuilt behind fatctl's back, so its row says `host_key: mismatch` and `trust_warning`
gives the line the command fails with.

The box's health comes first from one HTTPS `GET /readyz` per box, all at once (the fleet
prober, `fatctl.monitoring.probe`); only the boxes failing it are asked for `fat-health --json`
over SSH (a bounded fan-out, `check_boxes`), every box with `ssh_all`. The rows also say what
the stored probe history (`probe_results`, written by `fatctl serve`'s sweep) saw recently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fatctl.errors import FatctlError, HostKeyMismatch, NotFound
from fatctl.monitoring.probe import ProbeResult, run_sweep
from fatctl.monitoring.store import recent_rows
from fatctl.monitoring.targets import configured_targets, configured_trust
from fatctl.remote.commands.services import fat_health
from fatctl.services.common.targets import agent_target
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.infra.engine import InfraEngine

BOX_STATES = frozenset({"ready", "degraded", "upgrading", "provisioning"})
# SSH sessions at once when boxes are asked for fat-health: each holds a thread and a handshake
# (about 7 a second per core), and only the failing few are asked by default.
SSH_PARALLEL = 10


def agent_rows(db: Engine, names: Sequence[str]) -> list[dict[str, object]]:
    from fatctl.state import repo

    with session_scope(db) as session:
        agents = repo.list_agents(session, names=list(names))
        missing = set(names) - {a.name for a in agents}
        if missing:
            raise NotFound(f"no agent named {', '.join(sorted(missing))}")
        return [
            {
                "agent": a.name,
                "state": a.state,
                "last_step": a.last_step,
                "server_id": a.server_id,
                "ipv4": a.ipv4,
                "ipv6": a.ipv6,
                "engine": a.engine,
                "project": a.project,  # the Hetzner project ("" the top level's, None not placed)
                "error": a.last_error,
            }
            for a in agents
        ]


def cloud_view(infra: InfraEngine, name: str) -> str:
    try:
        info = infra.status(name)
    except FatctlError as exc:
        return f"error: {exc.one_line()}"
    return "absent" if info is None else f"{info.status} ({info.server_id})"


@dataclass(frozen=True)
class BoxHealth:
    """What asking a box for `fat-health --json` over SSH gave: the verdict (or why it could
    not be asked), its channels' readiness ("telegram ready, slack failing"), whether it proved
    its pinned host key ("ok", "mismatch", or "-" when never reached), and the parsed report
    (None when there was none)."""

    verdict: str
    channels: str
    host_key: str
    report: Mapping[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        return bool(self.report and self.report.get("healthy"))

    @property
    def view(self) -> tuple[str, str, str]:
        return self.verdict, self.channels, self.host_key


def box_health(db: Engine, settings: Settings, name: str, timeout: float = 5.0) -> BoxHealth:
    """Ask one box for `fat-health --json` over SSH; never raises for an unreachable box."""
    from fatctl.remote.runner import connect

    try:
        target = replace(agent_target(db, settings, name), connect_timeout=timeout)
        conn = connect(target)
    except HostKeyMismatch as exc:
        return BoxHealth(f"refused: {exc.one_line()}", "-", "mismatch")
    except FatctlError as exc:
        return BoxHealth(f"unreachable: {exc.one_line()}", "-", "-")
    try:
        # The box layout's health command when the settings override it (a test host's), else
        # the rendered fat-health.
        result = conn.run(settings.box_health or fat_health(), timeout=30)
    except FatctlError as exc:
        return BoxHealth(f"unreachable: {exc.one_line()}", "-", "ok")
    finally:
        conn.close()
    return _health_report(result.stdout, result.exit_code)


def health_view(
    db: Engine, settings: Settings, name: str, timeout: float = 5.0
) -> tuple[str, str, str]:
    """`box_health`'s verdict, channels and host-key columns."""
    return box_health(db, settings, name, timeout).view


def check_boxes(
    db: Engine, settings: Settings, names: Sequence[str], *, parallel: int = SSH_PARALLEL
) -> dict[str, BoxHealth]:
    """`box_health` of each named box, at most `parallel` SSH sessions at once."""
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names)))) as workers:
        found = workers.map(lambda n: box_health(db, settings, n), names)
        return dict(zip(names, found, strict=True))


def _health_report(stdout: str, exit_code: int | None) -> BoxHealth:
    try:
        report = json.loads(stdout)
    except ValueError:
        report = None
    if not isinstance(report, dict):
        return BoxHealth(f"no report (exit {exit_code})", "-", "ok")
    channels = dict(report.get("channels") or {})
    shown = ", ".join(f"{k} {v}" for k, v in sorted(channels.items())) or "none"
    if report.get("healthy"):
        verdict = f"healthy {report.get('runtime_version', '')}".strip()
        return BoxHealth(verdict, shown, "ok", report)
    problems = "; ".join(str(p) for p in report.get("problems", []))[:200]
    return BoxHealth(f"unhealthy: {problems}", shown, "ok", report)


def probe_boxes(
    settings: Settings, rows: Sequence[Mapping[str, Any]], **options: Any
) -> dict[str, ProbeResult]:
    """One concurrent HTTPS `/readyz` sweep of the boxes in `rows` (`name`, `ipv4`, `ipv6`),
    reached and trusted as the settings say; by agent name."""
    if not rows:
        return {}
    targets = configured_targets(rows, settings)
    results = run_sweep(targets, verify=configured_trust(settings), **options)
    return {r.agent: r for r in results}


def readyz_view(result: ProbeResult | None) -> str:
    if result is None:
        return "-"
    took = f"{result.latency_s * 1000:.0f} ms"
    return f"ready (HTTP 200, {took})" if result.ok else f"failed: {result.reason} ({took})"


def recent_view(rows: Sequence[Mapping[str, Any]]) -> str:
    """The stored probe history of one agent, oldest first, in a few words."""
    if not rows:
        return "-"
    ok = sum(1 for r in rows if r["ok"])
    last = rows[-1]
    how = "ok" if last["ok"] else f"failed via {last['via']}"
    return f"{ok}/{len(rows)} ok, last {how} at {last['at']:%Y-%m-%d %H:%M:%S}Z"


def status(
    db: Engine,
    settings: Settings,
    infra: InfraEngine | None,
    names: Sequence[str] = (),
    *,
    health: bool = True,
    ssh_all: bool = False,
) -> list[dict[str, object]]:
    """One row per agent: database columns plus `cloud`, `health`, `channels` and `host_key`,
    `readyz` (this run's HTTPS probe) and `recent` (the stored probe history).

    `health` probes every box over HTTPS at once and asks only the failing ones for fat-health
    over SSH (`ssh_all`: every box). Without a domain there is no name to probe: every box is
    asked over SSH, as before the prober."""
    rows = agent_rows(db, names)
    boxes = [r for r in rows if r["server_id"] and r["state"] in BOX_STATES]
    history: dict[str, list[dict[str, Any]]] = {}
    for stored in recent_rows(settings.database_url, names):  # all agents' when none named
        history.setdefault(stored["name"], []).append(stored)
    live: dict[str, ProbeResult] = {}
    asked: dict[str, BoxHealth] = {}
    if health and boxes:
        probed = [{**b, "name": b["agent"]} for b in boxes]
        live = probe_boxes(settings, probed) if settings.domain else {}
        ssh = [str(b["agent"]) for b in boxes
               if ssh_all or (b["agent"] not in live) or not live[str(b["agent"])].ok]  # fmt: skip
        asked = check_boxes(db, settings, ssh)
    for row in rows:
        name = str(row["agent"])
        has_box = bool(row["server_id"])
        row["cloud"] = cloud_view(infra, name) if infra is not None and has_box else "-"
        probe = live.get(name)
        if name in asked:
            view = asked[name].view
        elif probe is not None and probe.ok:
            view = (f"healthy: /readyz answered ready in {probe.latency_s * 1000:.0f} ms "
                    "(fat-health not asked)", "-", "-")  # fmt: skip
        else:
            view = ("-", "-", "-")
        row["health"], row["channels"], row["host_key"] = view
        row["readyz"] = readyz_view(probe)
        row["recent"] = recent_view(history.get(name, []))
    return rows


def trust_warning(rows: Sequence[dict[str, object]]) -> str | None:
    """The one line `fatctl status` fails with when a box did not prove its pinned host key,
    naming the agents; None when every box reached did."""
    names = [str(r["agent"]) for r in rows if r.get("host_key") == "mismatch"]
    if not names:
        return None
    whose = "its box" if len(names) == 1 else "their boxes"
    return (
        f"host key mismatch for {', '.join(names)}: {whose} presented a host key other than "
        "the pinned one (an attack, or a box rebuilt outside fatctl); nothing was run there"
    )
