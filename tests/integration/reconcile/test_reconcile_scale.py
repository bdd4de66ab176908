"""What reconcile costs at the APIs does not grow with the fleet: 60 labelled servers (5 real
agents, 55 orphans made behind fatctl's back) are read with two pages of servers, one of
primary IPs and one of firewalls at Hetzner, and one listing at Cloudflare. Counts are
asserted; the wall time is only reported (a figure)."""

from __future__ import annotations

import time
from typing import Any

from fatctl.services.reconcile.run import Options, reconcile
from fatctl.services.reconcile.views import ORPHAN
from tests.integration.provision.test_call_counts import api_calls
from tests.integration.reconcile.test_reconcile_cli import fleet


def test_api_calls_stay_flat_with_fleet_size(plane: Any, hcloud_client: Any, figure: Any) -> None:
    from hcloud.images import Image
    from hcloud.locations import Location
    from hcloud.server_types import ServerType

    fleet(plane, *(f"agent{i}" for i in range(5)))
    for i in range(55):
        hcloud_client.servers.create(
            name=f"stray{i}", server_type=ServerType(name="cx23"), image=Image(name="debian-12"),
            location=Location(name="fsn1"), labels={"managed-by": "fatctl", "agent": f"stray{i}"},
        )  # fmt: skip
    plane.hetzner.reset_stats()
    plane.cloudflare.reset_stats()
    started = time.monotonic()
    report = reconcile(plane.db, plane.settings, Options(health=False))
    elapsed = time.monotonic() - started
    hz, cf = api_calls(plane.hetzner), api_calls(plane.cloudflare)
    figure("reconcile of 60 servers: Hetzner calls", sum(hz.values()))
    figure("reconcile of 60 servers: Cloudflare calls", sum(cf.values()))
    figure("reconcile of 60 servers (in process, no health)", elapsed, "s")
    assert hz == {"GET /v1/servers": 2, "GET /v1/primary_ips": 1, "GET /v1/firewalls": 1}, hz
    assert cf.pop("GET /client/v4/zones", 0) <= 1 and cf == {
        "GET /client/v4/zones/{id}/dns_records": 1
    }, cf  # fmt: skip
    orphans = [f for f in report.findings if f.kind == ORPHAN]
    assert len(orphans) == 55 and len(report.findings) == 55


def test_pulumi_agents_without_the_cli_say_why_their_stack_was_not_checked(
    plane: Any, monkeypatch: Any
) -> None:
    import shutil

    from fatctl.state import repo
    from fatctl.state.db import session_scope

    if shutil.which("pulumi"):
        monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("HOME", str(plane.settings.data_dir))  # no ~/.pulumi/bin/pulumi
    fleet(plane, "alpha", "beta")
    with session_scope(plane.db) as session:
        repo.get_agent(session, "beta").engine = "pulumi"
    report = reconcile(plane.db, plane.settings, Options(health=False))
    assert [(f.kind, f.resource, f.agent) for f in report.findings] == [
        ("drift", "stack agent-beta", "beta")
    ]  # fmt: skip
    assert report.findings[0].detail.startswith(
        "drift check failed: the Pulumi CLI is not installed"
    )
