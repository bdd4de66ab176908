"""End to end on the sandbox cloud (root): three agents provisioned on real nspawn boxes (real
cloud-init, sshd, gateway, Caddy), status, SSH with the pinned key, one destroyed, and the
emulators hold exactly what should exist. One agent's first run fails on an injected DNS fault
and its rerun converges without duplicates. Prints boot-to-ready times.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fatctl.config import load_settings
from fatctl.errors import FatctlError
from fatctl.services.agents.records import NewAgent

AGENTS = ("e2e-one", "e2e-two", "e2e-three")


def _admin(info_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(info_url + path, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _plane(sandbox: dict[str, Any], tmp_path: Path) -> Any:
    from fatctl.domain import KeyRole
    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.services.agents.keys import add_key
    from fatctl.state import migrate
    from fatctl.state.db import make_engine

    # The plane's key ring is the settings' own master key, as in production: a rollout's
    # rollback and other in-process paths build their ring from the settings.
    master = generate_master_key()
    settings = load_settings(
        {**sandbox["env"], "FATCTL_DATA_DIR": str(tmp_path), "FATCTL_MASTER_KEY": master}
    )
    migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    pub = Path(settings.operator_key_file + ".pub").read_text()
    add_key(db, role=KeyRole.OPERATOR, public_key=pub, label="op", agent=None, actor="e2e")
    return settings, db, keyring_from(settings.master_key, settings.previous_master_keys)


def _provision(settings: Any, db: Any, ring: Any, name: str) -> tuple[str, float]:
    from fatctl.infra import make_engine
    from fatctl.pacing.poll import Backoff
    from fatctl.services.provision.flow import Options, provision

    req = NewAgent(name, f"{name}@example.com", "managed", "cx23", "fsn1", "debian-12", "2026.9.6")
    opts = Options(sandbox=True, backoff=Backoff(interval=1.0, cap=3.0, timeout=600))
    t0 = time.monotonic()
    done = provision(db, ring, settings, make_engine(settings, "hcloud"), req, "e2e", opts)
    return done.state, time.monotonic() - t0


def test_three_agents_end_to_end(
    sandbox: dict[str, Any], tmp_path: Path, figure: Callable[..., None]
) -> None:
    from fatctl.infra import make_engine
    from fatctl.remote.runner import connect
    from fatctl.services.common.targets import agent_target
    from fatctl.services.fleet.status import status
    from fatctl.services.provision.destroy import destroy

    settings, db, ring = _plane(sandbox, tmp_path)
    cf_admin, hz_admin = sandbox["admin"]["cloudflare"], sandbox["admin"]["hetzner"]

    # The third agent's first run meets a failing DNS API and stops after infra.
    _admin(cf_admin, "/faults", {"error_rate": 1.0, "error_statuses": [500]})
    with pytest.raises(FatctlError):
        _provision(settings, db, ring, AGENTS[2])
    _admin(cf_admin, "/faults", {"error_rate": 0.0})

    with ThreadPoolExecutor(3) as pool:
        results = dict(
            zip(AGENTS, pool.map(lambda n: _provision(settings, db, ring, n), AGENTS), strict=True)
        )
    for name, (state, took) in results.items():
        figure(f"{name} boot-to-ready (three at once)", took, "s")
        assert state == "ready", name

    rows: dict[str, Any] = {
        str(r["agent"]): r for r in status(db, settings, make_engine(settings, "hcloud"))
    }
    assert all(str(rows[n]["health"]).startswith("healthy") for n in AGENTS), rows
    assert all(str(rows[n]["cloud"]).startswith("running") for n in AGENTS), rows

    conn = connect(agent_target(db, settings, AGENTS[0]))  # pinned host key, operator key
    try:
        assert conn.run("systemctl is-active openclaw-gateway").stdout.strip() == "active"
    finally:
        conn.close()

    _no_secrets_in_audit(db, ring, AGENTS[0])
    destroy(db, ring, settings, make_engine(settings, "hcloud"), AGENTS[1], "e2e")
    _check_inventory(hz_admin, cf_admin, rows)


def _check_inventory(hz_admin: str, cf_admin: str, rows: dict[str, Any]) -> None:
    """Exactly two servers, six primary IPs (the destroyed agent keeps its two), four records."""
    hz = _admin(hz_admin, "/inventory")
    cf = _admin(cf_admin, "/inventory")
    assert sorted(s["name"] for s in hz["servers"]) == sorted([AGENTS[0], AGENTS[2]])
    ips = sorted(ip["ip"] for ip in hz["primary_ips"])
    assert len(ips) == len(set(ips)) == 6
    assert {rows[n]["ipv4"] for n in AGENTS} <= set(ips)
    records = sorted((r["type"], r["name"], r["content"]) for r in cf["dns_records"])
    wanted = sorted(
        (t, f"{n}.sandbox.test", rows[n]["ipv4" if t == "A" else "ipv6"])
        for n in (AGENTS[0], AGENTS[2])
        for t in ("A", "AAAA")
    )
    assert records == wanted


def _no_secrets_in_audit(db: Any, ring: Any, name: str) -> None:
    """The gateway token and the R2 secret went to the box, never into the audit trail."""
    from sqlmodel import select

    from fatctl.state import repo, secret_store
    from fatctl.state.db import session_scope
    from fatctl.state.models import AuditEvent

    with session_scope(db) as session:
        agent = repo.get_agent(session, name)
        values = [secret_store.get(session, ring, agent_pk=agent.id, name=n).reveal()
                  for n in ("gateway-token", "r2_credentials")]  # fmt: skip
        details = " ".join(e.detail for e in session.exec(select(AuditEvent)).all())
    secrets = [line.split("=", 1)[1] for v in values for line in v.splitlines() if "=" in line]
    secrets += [v for v in values if "=" not in v]
    assert secrets and all(len(s) > 8 and s not in details for s in secrets)
