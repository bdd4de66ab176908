"""Suspend, resume, archive and purge against the API emulators (Hetzner, Cloudflare, the S3
stand-in for R2), with no box: provisioning and resume skip the box steps, and the backup steps
run only with --no-backup here (a backup is taken by the box itself, so it is tested on real
boxes: tests/e2e/test_lifecycle.py).

Hetzner's documentation, followed by the emulator and relied on here:
- "Primary IPs ... can be assigned to a Server ... If auto_delete is false, the Primary IP is
  kept when the Server is deleted" (Primary IPs, `auto_delete`): a suspend deletes the server
  and the IPs stay, unassigned, and are billed ("Primary IPs are billed ... also when not
  assigned");
- `GET /pricing`: `image.price_per_gb_month` ("Price of the Image per GB/month") and
  `primary_ips[].prices[].price_monthly`; an image's `image_size` is "Size of the Image file in
  our storage in GB. For snapshot Images this is the value relevant for calculating costs".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fatctl.clock import fixed
from fatctl.errors import BadInput, ConfigError
from fatctl.pacing.poll import Backoff
from fatctl.services.agents.records import NewAgent
from fatctl.services.common.steps import BOX_STEPS
from fatctl.services.lifecycle.archive import archive, purge, purge_candidates
from fatctl.services.lifecycle.ops import OpInProgress, ops_of
from fatctl.services.lifecycle.suspend import Context, resume, suspend
from fatctl.services.provision.flow import Options, provision
from fatctl.state.db import session_scope
from tests.integration.provision.conftest import Plane, make_plane

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def request(name: str) -> NewAgent:
    return NewAgent(name, "life@example.com", "managed", "cx23", "fsn1", "debian-12", "2026.9.6")


def provisioned(plane: Plane, name: str) -> Any:
    opts = Options(skip=BOX_STEPS, backoff=Backoff.instant(), validate=False)
    return provision(plane.db, plane.ring, plane.settings, plane.infra(), request(name), "t", opts)


def context(plane: Plane, clock: Any = None, emit: Any = None) -> Context:
    return Context(plane.db, plane.ring, plane.settings, plane.infra(), "test",
                   emit=emit or (lambda kind, **f: None), backoff=Backoff.instant(),
                   clock=clock or fixed(NOW), skip_box=True)  # fmt: skip


def agent(plane: Plane, name: str) -> Any:
    from fatctl.state import repo

    with session_scope(plane.db) as session:
        row = repo.get_agent(session, name)
        session.expunge(row)
        return row


def secrets(plane: Plane, name: str) -> list[str]:
    from fatctl.state import secret_store

    with session_scope(plane.db) as session:
        return sorted(s.name for s in secret_store.names(session, agent_pk=agent(plane, name).id))


def audit(plane: Plane, name: str, prefix: str) -> list[tuple[str, str]]:
    from sqlmodel import col, select

    from fatctl.state.models import AuditEvent

    query = select(AuditEvent).where(AuditEvent.target == name).order_by(col(AuditEvent.id))
    with session_scope(plane.db) as session:
        rows = session.exec(query).all()
        return [(r.action, r.result) for r in rows if r.action.startswith(prefix)]


def writes(plane: Plane) -> int:
    """Mutating requests Hetzner has answered so far (polls of actions left out)."""
    calls = plane.hetzner.stats()["calls"]
    return sum(n for key, n in calls.items() if key.split(" ")[0] in ("POST", "PUT", "DELETE"))


def cost_of(plane: Plane, name: str) -> dict[str, Any]:
    from fatctl.services.cost.report import cost_document, fleet_cost

    report = fleet_cost(plane.db, plane.settings)
    return next(a for a in cost_document(report)["agents"] if a["agent"] == name)


@pytest.fixture
def r2_plane(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, s3_server: Any
) -> Any:
    p = make_plane(tmp_path, hetzner_emulator, cloudflare_emulator, r2=s3_server.url)
    yield p
    p.db.dispose()


def s3(plane: Plane) -> Any:
    import boto3

    url, key, secret = plane.settings.r2_endpoint, "operator-test", "s" * 40
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)  # fmt: skip


def keys_under(plane: Plane, prefix: str) -> list[str]:
    listed = s3(plane).list_objects_v2(Bucket=plane.settings.r2_bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_suspend_keeps_ips_and_dns_and_costs_the_ips_then_resume_comes_back_on_them(
    plane: Plane, figure: Any
) -> None:
    done = provisioned(plane, "sleepy")
    ips_before = sorted((ip["type"], ip["ip"]) for ip in plane.primary_ips())
    dns_before = plane.dns()
    running = cost_of(plane, "sleepy")
    assert Decimal(running["server"]) > 0

    calls = writes(plane)
    out = suspend(context(plane), "sleepy", no_backup=True)
    figure("suspend (--no-backup, API only)", out.elapsed_s, "s")
    figure("Hetzner writes of a suspend", writes(plane) - calls)
    assert out.state == "suspended"
    assert "sleepy" not in plane.servers()  # one server fewer: it stops billing
    assert sorted((ip["type"], ip["ip"]) for ip in plane.primary_ips()) == ips_before
    assert all(ip["assignee_id"] is None for ip in plane.primary_ips())
    assert plane.dns() == dns_before  # the records stay on the kept IPs
    row = agent(plane, "sleepy")
    assert (row.state, row.server_id, row.ipv4) == ("suspended", "", done.ipv4)
    assert row.suspended_at is not None
    assert audit(plane, "sleepy", "suspend.") == [
        ("suspend.backup", "skipped"), ("suspend.snapshot", "skipped"),
        ("suspend.infra", "started"), ("suspend.infra", "ok"),
        ("suspend.state", "started"), ("suspend.state", "ok"),
    ]  # fmt: skip

    # What it still costs: its kept primary IPs at the price list's price, no server.
    held = cost_of(plane, "sleepy")
    assert held["state"] == "suspended"
    assert Decimal(held["server"]) == 0 and Decimal(held["backups"]) == 0
    assert Decimal(held["ipv4"]) == Decimal("0.5") and Decimal(held["cost"]) == Decimal("0.5")

    # Suspending it again is refused (nothing to suspend), in one line, exit 2.
    with pytest.raises(BadInput) as again:
        suspend(context(plane), "sleepy", no_backup=True)
    assert again.value.one_line() == (
        "agent sleepy is suspended: suspend needs it ready or degraded or provisioning"
    )

    calls = writes(plane)
    back = resume(context(plane), "sleepy")
    figure("resume (no box steps, API only)", back.elapsed_s, "s")
    figure("Hetzner writes of a resume", writes(plane) - calls)
    server = plane.servers()["sleepy"]  # the same name
    assert str(server["id"]) != done.server_id  # a new server ...
    # ... on the same kept IPs, and nothing else made.
    assert sorted((ip["type"], ip["ip"]) for ip in plane.primary_ips()) == ips_before
    assert {ip["assignee_id"] for ip in plane.primary_ips()} == {server["id"]}
    assert plane.dns() == dns_before
    row = agent(plane, "sleepy")
    assert row.state == "provisioning"  # box steps skipped: it would go on to ready
    assert row.suspended_at is None and row.server_id == str(server["id"])
    assert [o.kind for o in ops_of(plane.db, "sleepy")] == ["suspend", "resume"]
    assert all(o.state == "done" for o in ops_of(plane.db, "sleepy"))


def test_suspend_with_a_snapshot_costs_its_gigabytes(plane: Plane) -> None:
    provisioned(plane, "snappy")
    out = suspend(context(plane), "snappy", snapshot=True, no_backup=True)
    assert out.detail["snapshot_id"]
    images = [i for i in plane.hetzner.inventory()["images"] if i["type"] == "snapshot"]
    assert [i["labels"]["kind"] for i in images] == ["pre-suspend"]
    held = cost_of(plane, "snappy")
    # 1.5 GB (the emulator's image_size) at 0.011 EUR per GB and month
    assert Decimal(held["snapshots"]) == Decimal("0.0165")
    assert Decimal(held["cost"]) == Decimal("0.5165")
    # Archived, its IPs are released and its suspend's snapshot deleted (it was billed; the
    # backup is what an archive keeps): it costs nothing any more.
    archive(context(plane), "snappy")
    gone = cost_of(plane, "snappy")
    assert (gone["state"], gone["plan_price"]) == ("archived", "0.0000")
    assert Decimal(gone["cost"]) == 0


def test_archive_releases_everything_at_the_clouds_and_purge_empties_r2_and_secrets(
    r2_plane: Plane, figure: Any
) -> None:
    plane = r2_plane
    done = provisioned(plane, "leaver")
    provisioned(plane, "stayer")
    bucket = plane.settings.r2_bucket
    client = s3(plane)
    client.create_bucket(Bucket=bucket)
    mine = f"agents/{agent(plane, 'leaver').agent_id}/"
    theirs = f"agents/{agent(plane, 'stayer').agent_id}/"
    for key in ("data/MEMORY.md", "backups/20261207T030000Z-scheduled.tar.gz.age"):
        client.put_object(Bucket=bucket, Key=mine + key, Body=b"ciphertext")
    client.put_object(Bucket=bucket, Key=theirs + "data/MEMORY.md", Body=b"other")

    out = archive(context(plane), "leaver", no_backup=True)
    figure("archive (--no-backup, API only)", out.elapsed_s, "s")
    assert out.state == "archived"
    assert "leaver" not in plane.servers()
    assert done.ipv4 not in {ip["ip"] for ip in plane.primary_ips()}  # released
    assert len(plane.primary_ips()) == 2  # the other agent's pair
    assert not [r for r in plane.dns() if r[1] == "leaver.sandbox.test"]
    row = agent(plane, "leaver")
    assert row.purge_after == NOW.replace(tzinfo=None) + timedelta(days=90) or (
        row.purge_after == NOW + timedelta(days=90)
    )
    assert (row.ipv4, row.primary_ipv4_id, row.server_id) == ("", "", "")
    assert Decimal(cost_of(plane, "leaver")["cost"]) == 0
    assert keys_under(plane, mine)  # data kept until the purge
    assert "backup-identity" in " ".join(secrets(plane, "leaver"))

    # Not yet due: nothing to purge.
    assert purge_candidates(context(plane)) == []
    later = fixed(NOW + timedelta(days=90, seconds=1))
    due = purge_candidates(context(plane, clock=later))
    assert [d.agent for d in due] == ["leaver"]
    [purged] = purge(context(plane, clock=later), [d.agent for d in due])
    figure("purge of one archived agent (R2 prefix, secrets)", purged.elapsed_s, "s")
    assert purged.state == "destroyed"
    assert keys_under(plane, mine) == []  # data and backups gone
    assert keys_under(plane, theirs) == [theirs + "data/MEMORY.md"]  # the other agent's kept
    assert secrets(plane, "leaver") == []  # crypto-shredded: the backup identity too
    assert agent(plane, "leaver").state == "destroyed"
    assert secrets(plane, "stayer")  # untouched
    assert purge_candidates(context(plane, clock=later)) == []


def test_a_suspended_agent_is_archived_without_a_box(plane: Plane) -> None:
    provisioned(plane, "drifter")
    suspend(context(plane), "drifter", no_backup=True)
    out = archive(context(plane), "drifter")  # no --no-backup needed: there is no box
    assert out.state == "archived"
    assert plane.primary_ips() == [] and plane.dns() == []
    assert ("archive.backup", "skipped") in audit(plane, "drifter", "archive.")


def test_refusals_come_before_anything_is_written(plane: Plane) -> None:
    provisioned(plane, "picky")
    before = (plane.servers(), plane.primary_ips(), plane.dns())
    # A backup is taken on the box: without one, --no-backup must be said.
    with pytest.raises(BadInput, match="pass --no-backup"):
        suspend(context(plane), "picky")
    with pytest.raises(ConfigError, match="FATCTL_ARCHIVE_RETENTION_DAYS"):
        lc = context(plane)
        archive(replace(lc, settings=replace(lc.settings, archive_retention_days="ninety")),
                "picky", no_backup=True)  # fmt: skip
    with pytest.raises(BadInput, match="resume needs it suspended"):
        resume(context(plane), "picky")
    no_token = replace(context(plane), settings=replace(plane.settings, hcloud_token=None))
    with pytest.raises(ConfigError, match="HCLOUD_TOKEN"):
        suspend(no_token, "picky", no_backup=True)
    with pytest.raises(ConfigError, match="HCLOUD_TOKEN"):
        archive(no_token, "picky", no_backup=True)
    no_r2 = replace(context(plane), settings=replace(plane.settings, r2_endpoint=""))
    with pytest.raises(ConfigError, match="FATCTL_R2_ENDPOINT"):
        purge(no_r2, ["picky"])
    assert (plane.servers(), plane.primary_ips(), plane.dns()) == before
    assert ops_of(plane.db, "picky") == []


class Killed(BaseException):
    """A kill between steps: nothing after it runs, not even the op's failure record."""


def kill_at(event: str) -> Any:
    def emit(kind: str, **fields: Any) -> None:
        if f"{kind}:{fields.get('step')}" == event:
            raise Killed(event)

    return emit


@pytest.mark.parametrize("event", ["step.start:infra", "step.done:infra", "step.start:state"])
def test_a_suspend_killed_between_steps_converges_on_rerun(plane: Plane, event: str) -> None:
    done = provisioned(plane, "crashy")
    with pytest.raises(Killed):
        suspend(context(plane, emit=kill_at(event)), "crashy", no_backup=True)
    [op] = ops_of(plane.db, "crashy")
    assert op.state == "running"  # as a SIGKILL leaves it
    # Another kind is refused while it is open; the same kind finishes it.
    with pytest.raises(OpInProgress, match="unfinished suspend"):
        archive(context(plane), "crashy", no_backup=True)
    out = suspend(context(plane), "crashy", no_backup=True)
    assert out.state == "suspended" and out.op_id == op.id
    assert "crashy" not in plane.servers()
    assert sorted(ip["ip"] for ip in plane.primary_ips() if ip["type"] == "ipv4") == [done.ipv4]
    assert len(plane.dns()) == 2
    assert [(o.state, o.last_step) for o in ops_of(plane.db, "crashy")] == [("done", "state")]


@pytest.mark.parametrize(
    "event", ["step.start:provision", "step.start:infra", "step.done:infra", "step.done:provision"]
)
def test_a_resume_killed_between_steps_converges_on_rerun(plane: Plane, event: str) -> None:
    done = provisioned(plane, "phoenix")
    suspend(context(plane), "phoenix", no_backup=True)
    with pytest.raises(Killed):
        resume(context(plane, emit=kill_at(event)), "phoenix")
    resume(context(plane), "phoenix")
    servers = plane.hetzner.inventory()["servers"]
    assert [s["name"] for s in servers] == ["phoenix"]
    ipv4 = [ip for ip in plane.primary_ips() if ip["type"] == "ipv4"]
    assert [(ip["ip"], ip["assignee_id"]) for ip in ipv4] == [(done.ipv4, servers[0]["id"])]
    assert len(plane.primary_ips()) == 2
    assert agent(plane, "phoenix").suspended_at is None


@pytest.mark.parametrize("event", ["step.start:dns", "step.done:dns", "step.done:infra"])
def test_an_archive_killed_between_steps_converges_on_rerun(plane: Plane, event: str) -> None:
    provisioned(plane, "goner")
    with pytest.raises(Killed):
        archive(context(plane, emit=kill_at(event)), "goner", no_backup=True)
    out = archive(context(plane), "goner", no_backup=True)
    assert out.state == "archived"
    assert plane.servers() == {} and plane.primary_ips() == [] and plane.dns() == []


def test_reconcile_fix_leaves_a_suspended_agents_records_and_ips_alone(plane: Plane) -> None:
    """`fatctl serve` runs `reconcile --fix` every hour: a suspended agent's records (kept on
    its kept IPs, so that resume needs no DNS change) must not look like orphans to delete."""
    from fatctl.services.reconcile.run import Options as ReconcileOptions
    from fatctl.services.reconcile.run import reconcile

    provisioned(plane, "dozer")
    suspend(context(plane), "dozer", no_backup=True)
    dns_before, ips_before = plane.dns(), plane.primary_ips()
    report = reconcile(plane.db, plane.settings, ReconcileOptions(health=False), fix=True,
                       actor="t")  # fmt: skip
    assert [(f.kind, f.resource) for f in report.findings] == []
    assert plane.dns() == dns_before and plane.primary_ips() == ips_before
