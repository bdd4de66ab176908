"""`fatctl status`: the database's view, the cloud's view and the box's own health, side by side.

Cloud and box views are best effort per agent: an unreachable box or a failed API call shows
up in that agent's row (`cloud`/`health` columns), never as a failure of the whole command.
A box that presents a host key other than the pinned one is different: that is an attack or a
box rebuilt behind fatctl's back, so its row says `host_key: mismatch` and `trust_warning`
gives the line the command fails with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from fatctl.errors import FatctlError, HostKeyMismatch, NotFound
from fatctl.remote.commands.services import fat_health
from fatctl.services.common.targets import agent_target
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.infra.engine import InfraEngine

BOX_STATES = frozenset({"ready", "degraded", "upgrading", "provisioning"})


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


def health_view(
    db: Engine, settings: Settings, name: str, timeout: float = 5.0
) -> tuple[str, str, str]:
    """The box's `fat-health --json` verdict (or why it could not be asked), its channels'
    readiness as OpenClaw's /readyz reports it ("telegram ready, slack failing"), and whether
    it proved its pinned host key ("ok", "mismatch", or "-" when it was never reached)."""
    from fatctl.remote.runner import connect

    try:
        target = replace(agent_target(db, settings, name), connect_timeout=timeout)
        conn = connect(target)
    except HostKeyMismatch as exc:
        return f"refused: {exc.one_line()}", "-", "mismatch"
    except FatctlError as exc:
        return f"unreachable: {exc.one_line()}", "-", "-"
    try:
        result = conn.run(fat_health(), timeout=30)
    finally:
        conn.close()
    return *_health_report(result.stdout, result.exit_code), "ok"


def _health_report(stdout: str, exit_code: int | None) -> tuple[str, str]:
    try:
        report = json.loads(stdout)
    except ValueError:
        return f"no report (exit {exit_code})", "-"
    channels = dict(report.get("channels") or {})
    shown = ", ".join(f"{k} {v}" for k, v in sorted(channels.items())) or "none"
    if report.get("healthy"):
        return f"healthy {report.get('runtime_version', '')}".strip(), shown
    problems = "; ".join(str(p) for p in report.get("problems", []))[:200]
    return f"unhealthy: {problems}", shown


def status(
    db: Engine,
    settings: Settings,
    infra: InfraEngine | None,
    names: Sequence[str] = (),
    *,
    health: bool = True,
) -> list[dict[str, object]]:
    """One row per agent: database columns plus `cloud`, `health`, `channels` and `host_key`."""
    rows = agent_rows(db, names)
    for row in rows:
        name = str(row["agent"])
        has_box = bool(row["server_id"])
        row["cloud"] = cloud_view(infra, name) if infra is not None and has_box else "-"
        wanted = health and has_box and row["state"] in BOX_STATES
        view = health_view(db, settings, name) if wanted else ("-", "-", "-")
        row["health"], row["channels"], row["host_key"] = view
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
