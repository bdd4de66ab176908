"""Reconcile and an unfinished lifecycle op (review 28, H3): an archive stopped after releasing
the agent's primary IPs leaves the agent `ready` with those addresses still recorded. The
hourly `reconcile --fix` must not put `<agent>.<domain>` back on them (Hetzner hands released
addresses to other tenants), and the archive's rerun must leave no record behind, whatever a
person or an older reconcile put back meanwhile. In process, against the emulators.

The emulator behaviour relied on is Hetzner's documented one (Primary IPs, `DELETE
/primary_ips/{id}`: "Deletes a Primary IP"; the address is no longer listed) and
Cloudflare's (`DELETE /zones/{zone_id}/dns_records/{id}`); nothing in the emulators changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from fatctl.dns.cloudflare_dns import CloudflareDns
from fatctl.services.lifecycle import archive as archive_module
from fatctl.services.lifecycle.archive import archive
from fatctl.services.lifecycle.ops import ops_of
from fatctl.services.reconcile.run import Options, reconcile
from tests.integration.lifecycle.test_suspend_archive import agent, context
from tests.integration.reconcile.test_reconcile_cli import cf_records, fleet


class Killed(Exception):
    """Stands in for the process dying inside the archive's `state` step."""


def archive_stopped_before_state(plane: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*args: object, **kwargs: object) -> dict[str, object]:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(archive_module, "_mark_archived", killed)
        with pytest.raises(Killed):
            archive(context(plane), "alpha", no_backup=True)


def test_reconcile_fix_leaves_a_stopped_archive_alone(
    plane: Any, monkeypatch: pytest.MonkeyPatch, hcloud_client: Any
) -> None:
    fleet(plane, "alpha")
    recorded = agent(plane, "alpha").ipv4
    archive_stopped_before_state(plane, monkeypatch)
    row = agent(plane, "alpha")
    assert (row.state, row.ipv4) == ("ready", recorded)  # the released address, still recorded
    assert [ip.ip for ip in hcloud_client.primary_ips.get_all()] == []
    assert cf_records(plane, "alpha.sandbox.test", "A") == []

    report = reconcile(plane.db, plane.settings, Options(health=False), fix=True, actor="t")

    assert cf_records(plane, "alpha.sandbox.test", "A") == []
    assert cf_records(plane, "alpha.sandbox.test", "AAAA") == []
    assert report.fixes == []
    dns = [f for f in report.findings if f.resource.startswith("dns ")]
    assert dns and not any(f.fixable for f in dns)
    assert all("archive (op " in f.advice and "`fatctl archive alpha`" in f.advice for f in dns)

    done = archive(context(plane), "alpha", no_backup=True)
    assert done.state == "archived"
    assert reconcile(plane.db, plane.settings, Options(health=False), fix=True,
                     actor="t").findings == []  # fmt: skip


def test_archive_rerun_deletes_records_put_back_after_its_dns_step(
    plane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet(plane, "alpha")
    row = agent(plane, "alpha")
    archive_stopped_before_state(plane, monkeypatch)
    CloudflareDns(plane.settings).upsert("alpha", row.ipv4, row.ipv6)  # an older reconcile
    assert [r["content"] for r in cf_records(plane, "alpha.sandbox.test", "A")] == [row.ipv4]

    archive(context(plane), "alpha", no_backup=True)

    assert cf_records(plane, "alpha.sandbox.test", "A") == []
    assert cf_records(plane, "alpha.sandbox.test", "AAAA") == []
    assert [(o.kind, o.state) for o in ops_of(plane.db, "alpha")] == [("archive", "done")]


def test_a_repair_is_skipped_when_an_op_opens_after_the_diff(
    plane: Any, monkeypatch: pytest.MonkeyPatch, cloudflare_client: Any
) -> None:
    """The diff saw no op; by the time the repair holds the lease one is open: skipped."""
    from fatctl.services.reconcile import fix as fix_module
    from tests.integration.reconcile.test_reconcile_fix import drop_a

    fleet(plane, "alpha")
    drop_a(plane, cloudflare_client, "alpha")
    real_guard = fix_module.Fixer.guard

    def guard_then_open(self: Any, name: str) -> Any:
        from fatctl.services.lifecycle.ops import lifecycle_op

        if name == "alpha" and not ops_of(plane.db, "alpha"):
            with pytest.raises(Killed), lifecycle_op(plane.db, "alpha", "archive", "t",
                                                     steps=("dns", "state")):  # fmt: skip
                raise Killed
        return real_guard(self, name)

    monkeypatch.setattr(fix_module.Fixer, "guard", guard_then_open)
    report = reconcile(plane.db, plane.settings, Options(health=False), fix=True, actor="t")
    assert [(f["result"], "archive (op " in str(f["detail"])) for f in report.fixes] == [
        ("skipped", True)
    ]
    assert cf_records(plane, "alpha.sandbox.test", "A") == []


def test_archive_of_an_agent_suspended_without_backup_says_none_exists(plane: Any) -> None:
    """Review 28 L8: the archive's skipped backup step said "its suspend's backup is kept"
    for an agent suspended with --no-backup, which has none."""
    from fatctl.services.lifecycle.suspend import suspend

    fleet(plane, "alpha")
    suspend(context(plane), "alpha", no_backup=True)
    done = archive(context(plane), "alpha")
    [backup] = [s for s in done.steps if s["step"] == "backup"]
    assert backup["result"] == "skipped"
    assert "no backup exists" in str(backup["note"]) and "kept" not in str(backup["note"])


def test_archive_and_purge_ops_are_stamped_by_the_flow_clock(plane: Any) -> None:
    """Review 28 L2 for archive: the op's times come from the context's clock (purge passes
    its own the same way; it needs R2, which this suite does not start)."""
    from datetime import UTC

    from sqlmodel import select

    from fatctl.state.db import session_scope
    from fatctl.state.models import LifecycleOp
    from tests.integration.lifecycle.test_suspend_archive import NOW

    fleet(plane, "alpha")
    archive(context(plane), "alpha", no_backup=True)
    with session_scope(plane.db) as session:
        [row] = session.exec(select(LifecycleOp)).all()
        stamps = [row.started_at, row.finished_at]
    assert [s.replace(tzinfo=UTC) if s and not s.tzinfo else s for s in stamps] == [NOW, NOW]
