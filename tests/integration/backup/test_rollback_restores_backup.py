"""An upgrade's automatic rollback restores the state backup it took first (issue 18), on real
sshd hosts running the rollout harness's OpenClaw-shaped runtime (tests/integration/rollout).

The scenario OpenClaw's docs warn of (docs/reference/database-schemas: a newer runtime migrates
the database forward and an older one refuses the newer schema): the new version migrates the
box's state and then fails its health gate; the rollback switches back to the old version, which
will not serve on the migrated state; only with the pre-upgrade backup put back does it serve
again. The host record (`rollout_steps`) says so: `rolled_back`, the backup's key, and
"pre-upgrade backup restored". Without `backup` in the policy nothing is restored and the step
fails, naming why.

`fat-backup` itself cannot run on these hosts (no age, rclone or R2 there; its own tests are
tests/integration/storage/test_fat_backup_script.py and tests/e2e), so the two box-side calls
the rollout makes, `take_backup` and `restore_backup`, are stand-ins that do over the same SSH
connection what the box's script does to the state: copy it aside, put it back, start the
gateway.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlmodel import select

from fatctl.domain import RolloutPolicy
from fatctl.pacing.poll import Poll
from fatctl.secrets import generate_master_key
from fatctl.sensitive import Sensitive
from fatctl.services.backup.on_box import BackupTaken
from fatctl.services.rollout import engine as rollout
from fatctl.state.db import session_scope
from fatctl.state.models import Agent, RolloutStep
from tests.integration.rollout import harness
from tests.integration.rollout.conftest import BoxFleet, box_fleet  # noqa: F401
from tests.integration.rollout.harness import NEW, OLD

BACKUP = "20261207T090000Z-pre-upgrade"


def migrating_upgrade(box: BoxFleet) -> str:
    """NEW installed beside OLD: it migrates the state (schema 2), then dies; OLD refuses a
    schema-2 state (exit 78) and serves a schema-1 one. Returns the box dir on the host."""
    host = box.hosts[0]
    local = host.home(host.identity.operator) / "box"
    remote = harness.box_dir(host.identity.operator)
    (local / "state").mkdir()
    (local / "state" / "schema").write_text("1\n")
    shutil.copytree(local / "opt" / OLD, local / "opt" / NEW, symlinks=True)
    (local / "opt" / NEW / ".installed").write_text(NEW + "\n")
    old_gw = local / "opt" / OLD / "bin" / "openclaw"
    new_gw = local / "opt" / NEW / "bin" / "openclaw"
    refuse = f'[ "$(cat {remote}/state/schema)" = 2 ] && exit 78\nexec sleep 100000'
    migrate = f"echo 2 > {remote}/state/schema; exit 1"
    new_text = old_gw.read_text().replace(f"echo {OLD}", f"echo {NEW}")
    new_gw.write_text(new_text.replace("exec sleep 100000", migrate))
    old_gw.write_text(old_gw.read_text().replace("exec sleep 100000", refuse))
    harness.chown_tree(local, host.identity.operator)
    return remote


def stand_ins(monkeypatch: pytest.MonkeyPatch, remote: str, calls: list[str]) -> None:
    def take_backup(engine: Any, pool: Any, target: Any, *, kind: str, **_: Any) -> BackupTaken:
        pool.get(target).run(f"cp {remote}/state/schema {remote}/backup-schema").check("backup")
        calls.append(f"backup {kind}")
        return BackupTaken(target.name, BACKUP, f"backups/{BACKUP}.tar.gz.age", kind,
                           "2026-12-07T09:00:00Z", 1, 0.1, "untouched")  # fmt: skip

    def restore_backup(engine: Any, ring: Any, pool: Any, target: Any, backoff: Any, *,
                       name: str, **_: Any) -> dict[str, object]:  # fmt: skip
        command = f"cp {remote}/backup-schema {remote}/state/schema && {remote}/bin/svc"
        pool.get(target).run(command).check("restore")
        calls.append(f"restore {name}")
        return {"ok": True, "name": name}

    monkeypatch.setattr("fatctl.services.rollout.kinds.take_backup", take_backup)
    monkeypatch.setattr("fatctl.services.rollout.upgrade.restore_backup", restore_backup)


def step_of(box: BoxFleet) -> RolloutStep:
    with session_scope(box.fleet.engine) as session:
        step = session.exec(select(RolloutStep)).one()
        session.expunge(step)
        return step


@pytest.mark.parametrize("backup", [True, False])
def test_a_rollback_onto_a_migrated_state_restores_the_pre_upgrade_backup(
    box_fleet: Callable[[int], BoxFleet],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    backup: bool,
) -> None:
    box = box_fleet(1)
    remote = migrating_upgrade(box)
    calls: list[str] = []
    stand_ins(monkeypatch, remote, calls)
    with session_scope(box.fleet.engine) as session:  # a box with R2 storage and a backup key
        for agent in session.exec(select(Agent)).all():
            agent.backup_recipient = "age1" + "q" * 58
            session.add(agent)
    settings = replace(box.fleet.settings, r2_endpoint="http://r2.invalid",
                       master_key=Sensitive(generate_master_key()))  # fmt: skip
    run = rollout.Run(box.fleet.engine, settings, box.layout, "test@ci", lambda k, **f: None,
                      poll=Poll(0.2), https=False)  # fmt: skip
    policy = RolloutPolicy(canary=1, batch=1, health_timeout_s=3, backup=backup)
    report = rollout.start(run, [h.target() for h in box.hosts], NEW, policy)
    [row] = report.rows
    step = step_of(box)
    host = box.hosts[0]
    assert harness.current(host) == OLD
    if backup:
        assert calls == ["backup pre-upgrade", f"restore {BACKUP}"]
        assert row["phase"] == step.phase == "rolled_back"
        assert "pre-upgrade backup restored" in step.error
        assert step.backup_key == f"backups/{BACKUP}.tar.gz.age"
        state = host.home(host.identity.operator) / "box" / "state" / "schema"
        assert state.read_text().strip() == "1"  # the state from before the upgrade
    else:
        assert calls == []
        assert row["phase"] == step.phase == "failed"
        assert f"{OLD} unhealthy after rollback" in step.error
        assert not step.backup_key
