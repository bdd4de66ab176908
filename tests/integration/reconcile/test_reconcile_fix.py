"""`--fix` when a repair cannot be made: the failure is reported per repair and audited, the
other repairs still run, and the finding stays (so the run exits 1). In process, against the
emulators."""

from __future__ import annotations

import socket
from typing import Any

from fatctl.services.reconcile.run import Options, reconcile
from fatctl.state.leases import release, try_acquire
from tests.integration.reconcile.test_reconcile_cli import audit, cf_records, fleet


def drop_a(plane: Any, client: Any, name: str) -> None:
    zone = plane.cloudflare.zone_id("sandbox.test")
    client.dns.records.delete(cf_records(plane, f"{name}.sandbox.test", "A")[0]["id"], zone_id=zone)


def test_a_foreign_record_is_never_overwritten(plane: Any, cloudflare_client: Any) -> None:
    fleet(plane, "alpha", "beta")
    drop_a(plane, cloudflare_client, "alpha")
    drop_a(plane, cloudflare_client, "beta")
    zone = plane.cloudflare.zone_id("sandbox.test")
    cloudflare_client.dns.records.create(zone_id=zone, name="alpha.sandbox.test", type="A",
                                         content="198.51.100.1", ttl=1)  # fmt: skip
    report = reconcile(plane.db, plane.settings, Options(health=False), fix=True, actor="t")
    results = {f["agent"]: (f["result"], f["detail"]) for f in report.fixes}
    assert results["beta"][0] == "ok"  # the other repair still ran
    assert results["alpha"][0] == "failed" and "not owned by fatctl" in str(results["alpha"][1])
    assert [(f.kind, f.resource) for f in report.findings] == [
        ("missing", "dns A alpha.sandbox.test")
    ]  # fmt: skip
    assert [r["content"] for r in cf_records(plane, "alpha.sandbox.test", "A")] == [
        "198.51.100.1"
    ]  # fmt: skip
    assert sorted((e.target, e.result) for e in audit(plane, "reconcile.fix")) == [
        ("alpha", "failed"), ("beta", "ok")
    ]  # fmt: skip


def test_a_busy_agent_is_skipped_not_raced(plane: Any, cloudflare_client: Any) -> None:
    fleet(plane, "alpha")
    drop_a(plane, cloudflare_client, "alpha")
    other = f"{socket.gethostname()}:1:another-run"  # a live process (pid 1) on this host
    assert try_acquire(plane.db, "agent:alpha", other, 60) is None
    try:
        report = reconcile(plane.db, plane.settings, Options(health=False), fix=True, actor="t")
    finally:
        release(plane.db, "agent:alpha", other)
    assert [(f["result"]) for f in report.fixes] == ["failed"]
    assert "agent:alpha is busy" in str(report.fixes[0]["detail"])
    assert cf_records(plane, "alpha.sandbox.test", "A") == []
    again = reconcile(plane.db, plane.settings, Options(health=False), fix=True, actor="t")
    assert again.findings == [] and [f["result"] for f in again.fixes] == ["ok"]


def test_with_wait_a_repair_queues_behind_the_holder(plane: Any, cloudflare_client: Any) -> None:
    import threading

    from fatctl.state.leases import waiting

    fleet(plane, "alpha")
    drop_a(plane, cloudflare_client, "alpha")
    other = f"{socket.gethostname()}:1:another-run"
    assert try_acquire(plane.db, "agent:alpha", other, 60) is None
    seen: list[str] = []
    done = threading.Timer(0.5, release, (plane.db, "agent:alpha", other))

    def told(row: Any) -> None:  # the holder finishes half a second after we start waiting
        seen.append(row.holder)
        done.start()

    try:
        with waiting(30.0, told):  # what --wait 30 installs
            report = reconcile(plane.db, plane.settings, Options(health=False), fix=True,
                               actor="t")  # fmt: skip
    finally:
        done.cancel()
        release(plane.db, "agent:alpha", other)
    assert seen == [other] and [f["result"] for f in report.fixes] == ["ok"]
    assert report.findings == []
