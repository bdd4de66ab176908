"""Restore-before-start and backup-before-risky-changes, the parts that need no box (issue 18).

The provision flow's plan with `restore_from` is pure (`provision.flow.step_fate`); destroy's
backup-first rule runs against the Hetzner and Cloudflare emulators with an agent whose box
cannot be reached (its address answers no SSH), which is what a dead box looks like to fatctl.
The box-side proof (state back after `fatctl rebuild`) is tests/e2e/test_rebuild.py.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from fatctl.errors import BadInput, FatctlError
from fatctl.pacing.poll import Backoff
from fatctl.services.agents.records import NewAgent
from fatctl.services.common.steps import BOX_STEPS, LATEST_BACKUP, PROVISION_STEPS, step_index
from fatctl.services.provision.flow import Options, provision, restore_point, step_fate
from tests.integration.provision.conftest import Plane
from tests.integration.provision.test_provision_flow import agent_row

NONE = frozenset[str]()


def _plan(resume_after: str | None, *, restoring: bool, skip: frozenset[str] = NONE) -> dict:
    resume_from = step_index(resume_after) if resume_after else -1
    return {s: step_fate(s, resume_from, skip, restoring=restoring) for s in PROVISION_STEPS}


def test_restore_and_start_come_between_secrets_and_health() -> None:
    order = [PROVISION_STEPS.index(s) for s in ("secrets", "restore", "start", "health")]
    assert order == sorted(order) and order[-1] - order[0] == 3
    assert {"restore", "start"} <= BOX_STEPS  # the API-only sandbox skips them with the box


def test_without_a_backup_to_restore_both_new_steps_are_skipped() -> None:
    plan = _plan(None, restoring=False)
    assert (plan["restore"], plan["start"]) == ("skipped", "skipped")
    assert all(fate == "run" for step, fate in plan.items() if step not in {"restore", "start"})


def test_with_restore_from_every_step_runs_once() -> None:
    plan = _plan(None, restoring=True)
    assert set(plan.values()) == {"run"}


def test_a_rerun_keeps_a_finished_restore_and_still_starts() -> None:
    """Killed after `restore`: the state is in place; the rerun starts the gateway."""
    plan = _plan("restore", restoring=True)
    assert plan["secrets"] == plan["restore"] == "kept"
    assert plan["start"] == plan["health"] == "run"
    killed_inside = _plan("secrets", restoring=True)  # restore started, never recorded
    assert (killed_inside["restore"], killed_inside["start"]) == ("run", "run")


def test_a_rerun_without_restore_still_delivers_an_env_an_earlier_run_held() -> None:
    """A run with `restore_from` killed after `secrets` held gateway.env back; continuing it
    without one (`fatctl provision`) must deliver it, or the gateway never starts."""
    for after in ("secrets", "restore"):
        plan = _plan(after, restoring=False)
        assert (plan["restore"], plan["start"]) == ("skipped", "run"), after
    assert _plan("start", restoring=False)["start"] == "skipped"


def test_no_box_skips_restore_and_start_even_when_asked() -> None:
    plan = _plan(None, restoring=True, skip=BOX_STEPS)
    assert all(plan[s] == "skipped" for s in ("restore", "start", "health", "ready"))


def test_restore_from_is_checked_before_it_could_reach_a_shell() -> None:
    assert restore_point("latest") == LATEST_BACKUP
    key = "backups/20261207T030000Z-pre-rebuild.tar.gz.age"
    assert restore_point(key) == "20261207T030000Z-pre-rebuild"
    assert Options(restore_from=key).restore_from == "20261207T030000Z-pre-rebuild"
    for bad in ("x; rm -rf /", "20261207T030000Z", "../20261207T030000Z-manual", ""):
        with pytest.raises(BadInput):
            Options(restore_from=bad)


# --- destroy backs up first -------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _live_agent_without_a_reachable_box(plane: Plane, name: str) -> Plane:
    """An agent provisioned API-only (server, IPs, DNS at the emulators), then marked ready
    at an address where nothing answers SSH: to fatctl, a box that died."""
    from fatctl.domain import AgentState
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    request = NewAgent(name, "demo@example.com", "managed", "cx23", "fsn1", "debian-12",
                       "2026.9.6")  # fmt: skip
    opts = Options(skip=BOX_STEPS, backoff=Backoff.instant(), validate=False)
    provision(plane.db, plane.ring, plane.settings, plane.infra(), request, "test", opts)
    with session_scope(plane.db) as session:
        agent = repo.get_agent(session, name)
        agent.ipv4 = "127.0.0.1"  # its records still say the emulator's address
        repo.set_state(session, agent, AgentState.READY)
    return replace(plane, settings=replace(plane.settings, ssh_port=str(_closed_port())))


def _state(plane: Plane, name: str) -> str:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(plane.db) as session:
        return repo.get_agent(session, name).state


def _audit(plane: Plane, name: str, action: str) -> list[tuple[str, dict[str, Any]]]:
    from sqlmodel import col, select

    from fatctl.state.db import session_scope
    from fatctl.state.models import AuditEvent

    with session_scope(plane.db) as session:
        query = select(AuditEvent).where(AuditEvent.target == name, AuditEvent.action == action)
        rows = session.exec(query.order_by(col(AuditEvent.id))).all()
        return [(r.result, json.loads(r.detail or "{}")) for r in rows]


def test_destroy_without_a_reachable_box_refuses_and_changes_nothing(plane: Plane) -> None:
    from fatctl.services.provision.destroy import destroy

    dead = _live_agent_without_a_reachable_box(plane, "gone")
    servers, records = plane.servers(), plane.dns()
    with pytest.raises(FatctlError) as refused:
        destroy(dead.db, dead.ring, dead.settings, dead.infra(), "gone", "test")
    line = refused.value.one_line()
    assert "backup before destroy failed" in line and "--no-backup" in line, line
    assert "\n" not in line
    assert plane.servers() == servers and plane.dns() == records  # nothing at the clouds
    assert _state(plane, "gone") == "ready"  # not even `destroying`
    assert [r for r, _ in _audit(plane, "gone", "destroy.backup")] == ["started", "failed"]
    assert _audit(plane, "gone", "destroy.infra") == []


def test_destroy_no_backup_is_audited_and_destroys(plane: Plane) -> None:
    from fatctl.services.provision.destroy import destroy

    dead = _live_agent_without_a_reachable_box(plane, "lost")
    done = destroy(dead.db, dead.ring, dead.settings, dead.infra(), "lost", "ops@example",
                   backup=False)  # fmt: skip
    assert done.state == "destroyed" and "lost" not in plane.servers()
    assert _audit(plane, "lost", "destroy.backup") == [
        ("skipped", {"note": "skipped by --no-backup"})
    ]
    assert {"step": "backup", "result": "skipped", "note": "skipped by --no-backup"} in done.steps


def test_destroy_of_an_agent_without_a_box_needs_no_backup(plane: Plane) -> None:
    """Never past provisioning's secrets step (here: API-only): no state to lose, no refusal."""
    from fatctl.services.provision.destroy import destroy

    request = NewAgent("bare", "demo@example.com", "managed", "cx23", "fsn1", "debian-12",
                       "2026.9.6")  # fmt: skip
    opts = Options(skip=BOX_STEPS, backoff=Backoff.instant(), validate=False)
    provision(plane.db, plane.ring, plane.settings, plane.infra(), request, "test", opts)
    done = destroy(plane.db, plane.ring, plane.settings, plane.infra(), "bare", "test")
    assert done.state == "destroyed"
    assert {"step": "backup", "result": "skipped", "note": "no box holding state"} in done.steps
    assert _audit(plane, "bare", "destroy.backup") == []


# --- rebuild keeps the customer ---------------------------------------------------------


def _ctx(plane: Plane) -> Any:
    from fatctl.services.lifecycle.suspend import Context

    return Context(plane.db, plane.ring, plane.settings, plane.infra(), "ops@example",
                   backoff=Backoff.instant(timeout=0.5))  # fmt: skip


def _rebuilds(plane: Plane) -> int:
    calls = plane.hetzner.stats()["calls"]
    return sum(n for key, n in calls.items() if key.endswith("/actions/rebuild"))


def test_rebuild_of_a_box_without_state_only_reinstalls_it(
    plane: Plane, figure: Callable[..., None]
) -> None:
    """Provisioned API-only (never past secrets): nothing to back up or restore; the server is
    reinstalled in place (same id and IPs) and provisioning is left to `fatctl provision`."""
    from fatctl.services.lifecycle.ops import ops_of
    from fatctl.services.lifecycle.rebuild import rebuild

    request = NewAgent("plain", "demo@example.com", "managed", "cx23", "fsn1", "debian-12",
                       "2026.9.6")  # fmt: skip
    opts = Options(skip=BOX_STEPS, backoff=Backoff.instant(), validate=False)
    before = provision(plane.db, plane.ring, plane.settings, plane.infra(), request, "t", opts)
    plane.hetzner.reset_stats()
    started = time.monotonic()
    done = rebuild(_ctx(plane), "plain", snapshot=False)
    figure("rebuild op, API only (reinstall, no box state)", time.monotonic() - started, "s")
    calls = plane.hetzner.stats()["calls"]
    writes = sum(n for k, n in calls.items() if not k.startswith("GET"))
    figure("rebuild op, Hetzner writes", writes)
    assert _rebuilds(plane) == 1
    fates = {s["step"]: s["result"] for s in done.steps if s["step"] != "op"}
    assert fates == {"backup": "skipped", "snapshot": "skipped", "infra": "ok",
                     "provision": "skipped"}  # fmt: skip
    assert (done.detail["server_id"], done.detail["ipv4"]) == (before.server_id, before.ipv4)
    assert agent_row(plane, "plain").state == "provisioning"  # as it was
    assert [(o.kind, o.state) for o in ops_of(plane.db, "plain")] == [("rebuild", "done")]


def test_rebuild_of_an_unreachable_box_refuses_before_the_disk_is_wiped(plane: Plane) -> None:
    """The backup comes first: a box that cannot be reached fails it, and its disk stays."""
    from fatctl.services.lifecycle.ops import ops_of
    from fatctl.services.lifecycle.rebuild import rebuild

    dead = _live_agent_without_a_reachable_box(plane, "dead")
    plane.hetzner.reset_stats()
    with pytest.raises(FatctlError):
        rebuild(_ctx(dead), "dead", snapshot=False)
    assert _rebuilds(plane) == 0
    assert agent_row(plane, "dead").state == "ready"
    assert [(o.kind, o.state, o.last_step) for o in ops_of(plane.db, "dead")] == [
        ("rebuild", "failed", "")
    ]


def test_rebuild_rerun_never_wipes_twice_and_no_backup_is_audited(plane: Plane) -> None:
    """With --no-backup the disk is reinstalled and the agent is provisioning after `infra`;
    its box steps fail here (nothing answers SSH), and the rerun continues them without a
    second reinstall, still restoring (the newest backup: none was taken)."""
    from fatctl.services.lifecycle.ops import ops_of
    from fatctl.services.lifecycle.rebuild import rebuild

    dead = _live_agent_without_a_reachable_box(plane, "again")
    plane.hetzner.reset_stats()
    with pytest.raises(FatctlError):
        rebuild(_ctx(dead), "again", snapshot=False, no_backup=True)
    assert _rebuilds(plane) == 1
    row = agent_row(plane, "again")
    assert (row.state, row.last_step) == ("provisioning", "infra")
    assert [(o.state, o.last_step) for o in ops_of(plane.db, "again")] == [("failed", "infra")]
    assert _audit(plane, "again", "rebuild.backup") == [
        ("skipped", {"note": "skipped by --no-backup"})
    ]
    with pytest.raises(FatctlError):
        rebuild(_ctx(dead), "again", snapshot=False)  # the flags of a rerun: backup kept
    assert _rebuilds(plane) == 1
    (op,) = ops_of(plane.db, "again")
    assert op.params["holds_state"] is True and "backup" not in op.params
    assert [r for r, _ in _audit(plane, "again", "provision.ssh")] == ["started", "failed"] * 2

    # A plain provision would start the gateway on the wiped disk: refused while the op is open.
    request = NewAgent("again", "demo@example.com", "managed", "cx23", "fsn1", "debian-12",
                       "2026.9.6")  # fmt: skip
    with pytest.raises(BadInput) as refused:
        provision(dead.db, dead.ring, dead.settings, dead.infra(), request, "t", Options())
    assert "unfinished rebuild" in refused.value.one_line()
    assert "`fatctl rebuild again`" in refused.value.one_line()


# --- upgrades back up first -------------------------------------------------------------


def _host_step(plane: Plane, name: str, kind: str, policy: Any) -> tuple[Any, Any, Any, list]:
    from fatctl.remote.commands.upgrade import BoxLayout
    from fatctl.services.common.targets import agent_target
    from fatctl.services.converge import job as _converge  # noqa: F401 (registers converge)
    from fatctl.services.rollout import upgrade as _upgrade  # noqa: F401 (registers upgrade)
    from fatctl.services.rollout.engine import Job, Run
    from fatctl.state.models import RolloutStep

    events: list[tuple[str, dict[str, Any]]] = []
    target = agent_target(plane.db, plane.settings, name)
    run = Run(plane.db, plane.settings, BoxLayout(), "t", lambda k, **f: events.append((k, f)),
              targets={name: target})  # fmt: skip
    job = Job(1, kind, "2026.9.7", policy, {})
    step = RolloutStep(id=1, rollout_id=1, agent_pk=1, phase="running")
    return run, job, step, events


def test_upgrades_back_up_first_and_a_failed_backup_fails_the_step_first(plane: Plane) -> None:
    """`backup_first` runs for kinds that back up (upgrade, not converge) unless the policy
    says no; a box without `fat-backup` (no R2 storage) goes on without; with R2, a backup that
    cannot be taken (the box is unreachable) fails the step before the box is touched."""
    from fatctl.domain import RolloutPolicy
    from fatctl.remote.runner import Pool
    from fatctl.services.rollout.kinds import backup_first, registered

    assert RolloutPolicy().backup is True
    dead = _live_agent_without_a_reachable_box(plane, "old")
    with Pool() as pool:
        for kind, policy in (
            ("converge", RolloutPolicy()),
            ("upgrade", RolloutPolicy(backup=False)),
        ):
            run, job, step, events = _host_step(dead, "old", kind, policy)
            backup_first(run, pool, job, step, "old")
            assert events == [] and step.backup_key == "", kind
        assert registered()["upgrade"].backs_up and not registered()["converge"].backs_up

        run, job, step, events = _host_step(dead, "old", "upgrade", RolloutPolicy())
        backup_first(run, pool, job, step, "old")  # no R2 in these settings: no fat-backup
        assert events == [] and step.backup_key == ""

        with_r2 = replace(dead, settings=replace(dead.settings, r2_endpoint="http://127.0.0.1:9"))
        run, job, step, events = _host_step(with_r2, "old", "upgrade", RolloutPolicy())
        with pytest.raises(FatctlError) as failed:
            backup_first(run, pool, job, step, "old")
        assert failed.value.one_line().startswith("backup before upgrade failed")
        assert "--no-backup" in failed.value.one_line() and step.backup_key == ""


def test_rebuild_dry_run_says_what_it_would_do_and_does_nothing(plane: Plane) -> None:
    from fatctl.services.lifecycle.ops import ops_of
    from fatctl.services.lifecycle.rebuild import preview

    dead = _live_agent_without_a_reachable_box(plane, "maybe")
    plane.hetzner.reset_stats()
    asked = {"image": None, "snapshot": False, "no_backup": False, "no_restore": False}
    planned = preview(_ctx(dead), "maybe", **asked)
    assert planned["backup"] == "pre-rebuild, gateway stopped"
    assert planned["restore"] == "the pre-rebuild backup" and planned["ips"] == "kept"
    assert preview(_ctx(dead), "maybe", **{**asked, "no_backup": True})["restore"] == (
        "the newest non-timer backup"
    )
    assert _rebuilds(plane) == 0 and ops_of(plane.db, "maybe") == []
    assert agent_row(plane, "maybe").state == "ready"
