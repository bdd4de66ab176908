"""A real Prometheus (Debian `prometheus`) scraping `fatctl serve`'s app (`create_app`, under
uvicorn on a loopback port) with a `metrics:read` bearer token from a credentials file, the
shipped rules loaded with `for:` shortened to 2 s. The series come only from what the sweeps
stored (nothing in the server probes): AgentDown must fire for exactly the boxes the last sweep
found failing, clear for one that answers again at the next sweep, and BackupStale must fire
for the box that reports no backup and not for the one whose own timer backed up an hour ago
(fat-health's `backup.at`, recorded by the sweep; fatctl itself took no backup of either).

Prometheus's scrape config (prometheus.io/docs/prometheus/latest/configuration/configuration/,
scrape_config): "authorization: [ type: <string> | default: Bearer ] [ credentials_file:
<filename> ]" - the token is read from the file and sent as `Authorization: Bearer <token>`.

Not timed: every wait polls `/api/v1/alerts` up to a generous deadline.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlmodel import col, select

from fatctl.monitoring.sweep import sweep_fleet
from tests.integration.monitoring.conftest import Swept
from tests.integration.monitoring.test_prometheus import (
    alerts,
    eventually,
    firing,
    running_prometheus,
)

pytestmark = pytest.mark.skipif(not shutil.which("prometheus"), reason="prometheus not installed")

FAILING = {"box3", "box4", "box5"}


@pytest.fixture
def served(swept: Swept, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`fatctl serve`'s app on a free loopback port, and a scraper token in a file."""
    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.sensitive import Sensitive
    from fatctl.service.api.app import create_app
    from fatctl.service.context import Runtime
    from fatctl.service.tokens import create_token

    token, _ = create_token(swept.fleet.engine, "prometheus", ["metrics:read"], None, "test@ci")
    (tmp_path / "token").write_text(token)
    ring = keyring_from(Sensitive(generate_master_key()))
    runtime = Runtime(swept.fleet.engine, ring, swept.settings, make_infra=lambda: None)  # type: ignore[arg-type,return-value]
    app = create_app(runtime, launch=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    try:
        yield f"127.0.0.1:{port}", str(tmp_path / "token")
    finally:
        server.should_exit = True
        serving.join(timeout=30)
        sock.close()


@pytest.fixture
def prometheus(tmp_path: Path, served: tuple[str, str]) -> Iterator[str]:
    target, token_file = served
    scrape = {
        "job_name": "fatctl",
        "static_configs": [{"targets": [target]}],
        "authorization": {"type": "Bearer", "credentials_file": token_file},
    }
    with running_prometheus(tmp_path, scrape, for_duration="2s") as url:
        yield url


def _backs_up_on_its_own(swept: Swept, box: str, at: datetime) -> None:
    """`box`'s fat-health reports a healthy box whose timer took a backup at `at`."""
    host = next(h for h in swept.fleet.hosts if h.name == box)
    report = {"healthy": True, "runtime_version": "2026.9.6", "problems": [],
              "backup": {"at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "ok": True, "error": "",
                         "object": f"backups/{at:%Y%m%dT%H%M%SZ}-scheduled.tar.gz.age",
                         "size_bytes": 1024, "took_s": 2}}  # fmt: skip
    script = host.home(host.identity.operator) / "fat-health"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(report)}\nEOF\n")


def test_prometheus_alerts_on_what_the_sweeps_stored(swept: Swept, prometheus: str) -> None:
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent

    now = datetime.now(UTC)  # Prometheus judges backup age against its own clock
    _backs_up_on_its_own(swept, "box1", now - timedelta(hours=1))
    with session_scope(swept.fleet.engine) as session:
        for agent in session.exec(select(Agent).where(col(Agent.name).in_(["box1", "box2"]))):
            agent.backup_recipient = "age1examplerecipient"  # backups configured, none taken
    sweep_fleet(swept.fleet.engine, None, swept.settings, now=now)  # type: ignore[arg-type]
    observed: list[dict[str, dict[str, set[str]]]] = []

    def settled() -> bool:
        seen = alerts(prometheus)
        observed.append(seen)
        return firing(seen, "AgentDown") == FAILING and firing(seen, "BackupStale") == {"box2"}

    eventually(settled, "AgentDown for box3-5, BackupStale for box2 only")
    assert set().union(*(firing(s, "AgentDown") for s in observed)) == FAILING
    assert "box1" not in set().union(*(firing(s, "BackupStale") for s in observed))

    swept.standin.set({"box3": "ok"})
    sweep_fleet(swept.fleet.engine, None, swept.settings, now=now + timedelta(minutes=5))  # type: ignore[arg-type]

    def cleared() -> Any:
        seen = alerts(prometheus)
        return firing(seen, "AgentDown") == FAILING - {"box3"}

    eventually(cleared, "AgentDown cleared for box3 after it answered the next sweep")
