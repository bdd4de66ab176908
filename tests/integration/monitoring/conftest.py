"""The swept fleet of the sweep and status tests: real sshd daemons on 127.0.10.N as agents'
boxes, the HTTPS stand-in (`standin_fleet`) answering `/readyz` on the same addresses, and a
`fat-health --json` stand-in script per box printing a report in fat-health's JSON shape
(`templates/scripts/fat-health.sh.j2`: healthy, runtime_version, problems, backup)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from tests.fixtures.sshd import Fleet
from tests.integration.monitoring.standin_fleet import StandinFleet, standin_fleet

DOMAIN = "fleet.test"
# box1, box2 answer ready; box3's gateway is not ready (503) though fat-health says healthy
# (the fault is outside the box's own checks); box4 runs no HTTPS at all and fat-health says
# why; box5 has no box at its address at all (no HTTPS, no sshd).
BEHAVIOURS = {"box1": "ok", "box2": "ok", "box3": "down"}
BACKUP_AT = "2026-12-07T04:10:00Z"
REPORTS = {
    "box3": {"healthy": True, "runtime_version": "2026.9.6", "problems": [],
             "backup": {"at": BACKUP_AT, "object": "backups/20261207T041000Z-scheduled.tar.gz.age",
                        "size_bytes": 2048, "took_s": 3, "ok": True, "error": ""}},
    "box4": {"healthy": False, "runtime_version": "2026.9.6",
             "problems": ["gateway not running"], "backup": None},
    "box1": {"healthy": True, "runtime_version": "2026.9.6", "problems": [],
             "backup": {"at": BACKUP_AT, "object": "backups/20261207T041000Z-scheduled.tar.gz.age",
                        "size_bytes": 4096, "took_s": 3, "ok": True, "error": ""}},
}  # fmt: skip


@dataclass
class Swept:
    fleet: Fleet
    settings: Any
    standin: StandinFleet

    def connections(self) -> dict[str, int]:
        """SSH connections each sshd has logged so far (LogLevel VERBOSE logs every one)."""
        return {
            h.name: len(re.findall(r"Connection from ", h.log_text())) for h in self.fleet.hosts
        }

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        sql = (
            "SELECT a.name, p.at, p.ok, p.via, p.status_code, p.latency_ms, p.error FROM "
            "probe_results p JOIN agents a ON a.id = p.agent_pk ORDER BY a.name, p.at"
        )
        found: dict[str, list[dict[str, Any]]] = {}
        with self.fleet.engine.connect() as conn:
            for row in conn.execute(text(sql)).mappings():
                found.setdefault(row["name"], []).append(dict(row))
        return found


def _health_script(home: Path, report: dict[str, Any] | None) -> str:
    """A `fat-health --json` stand-in in the operator's home: prints `report`, exits 1 when it
    says unhealthy (as fat-health does)."""
    script = home / "fat-health"
    body = json.dumps(report or {"healthy": True, "problems": [], "backup": None})
    code = 0 if report is None or report["healthy"] else 1
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{body}\nEOF\nexit {code}\n")
    script.chmod(0o755)
    return script.name


@pytest.fixture
def swept(sshd_hosts: Any, fleet_db: Any, tmp_path: Path) -> Iterator[Swept]:
    """box1..box4 on sshd, box5 at an address with nothing listening; settings that probe
    each box at its address on the stand-in's port, trusting only its CA."""
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent, HostKey

    hosts = sshd_hosts(4)
    fleet = fleet_db(hosts)
    operator = hosts[0].identity.operator
    for host in hosts:
        _health_script(host.home(operator), REPORTS.get(host.name))
    with session_scope(fleet.engine) as session:
        for agent in session.exec(select(Agent)).all():
            agent.server_id = str(1000 + (agent.id or 0))
        ghost = Agent(name="box5", agent_id="id0005", owner_id=1, state="degraded",
                      server_type="cx23", location="fsn1", image="debian-12",
                      runtime_version="2026.9.6", ipv4="127.0.10.250",
                      server_id="1005")  # fmt: skip
        session.add(ghost)
        session.flush()
        pinned = session.exec(select(HostKey)).first()
        assert pinned is not None and ghost.id is not None
        session.add(HostKey(agent_pk=ghost.id, key_type=pinned.key_type,
                            public_key=pinned.public_key,
                            fingerprint=pinned.fingerprint))  # fmt: skip
    addresses = tuple(h.address for h in hosts[:3])  # box4 answers no HTTPS
    (tmp_path / "standin").mkdir()
    with standin_fleet(tmp_path / "standin", DOMAIN, BEHAVIOURS, hosts=addresses) as standin:
        (tmp_path / "ca.pem").write_text(standin.pems.ca)
        settings = replace(
            fleet.settings,
            domain=DOMAIN,
            probe_port=str(standin.port),
            probe_ca_file=str(tmp_path / "ca.pem"),
            probe_by_address="1",
            box_health=f"/home/{operator}/fat-health",
        )
        yield Swept(fleet, settings, standin)
