"""Which backup a resume puts back, and what `fatctl provision` says to a parked agent
(review 28, H1 and H2).

H1: a resume restores the backup its suspend took, decided once and kept in the resume op, so
a rerun after a failed restore never picks a newer backup the new box's timer took of its
empty state. Without a remembered one, "latest" is resolved on the box to its newest backup
not taken by the timer, and that name is kept too.

No box runs here (the box steps are proved on real boxes: tests/e2e/test_lifecycle.py), and
no harness answers `fat-backup list/restore` without one. So the two box-side pieces are
stood in for, and only they: the suspend's backup step (`backup_stopped`, which on a box
remembers the name `fat-backup run` answered) and the provision flow the resume continues
(`continue_provision`, which on a box lists and restores). The stand-in records the
`restore_from` it is handed and, for "latest", answers with `preferred_backup` of a listing
the way `box.restore_state` does; the rest (ops, their params, reruns, the Hetzner and
Cloudflare emulators) is the real thing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fatctl.services.backup.on_box import BackupFailed
from fatctl.services.common.steps import BOX_STEPS, LATEST_BACKUP
from fatctl.services.lifecycle import suspend as lifecycle
from fatctl.services.lifecycle.ops import ops_of
from fatctl.services.provision import flow
from fatctl.services.provision.box import preferred_backup
from tests.integration.lifecycle.test_lifecycle_cli import operator_cli
from tests.integration.lifecycle.test_suspend_archive import agent, context, provisioned
from tests.integration.provision.conftest import Plane

PRE_SUSPEND = "20261020T050000Z-pre-suspend"
PRE_UPGRADE = "20261101T040000Z-pre-upgrade"
# Taken by the new box's timer after a failed restore: the empty, never-started state.
EMPTY_TIMER = "20261206T031500Z-scheduled"
LATER_TIMER = "20261207T031500Z-scheduled"


def listed(*names: str) -> list[dict[str, object]]:
    """`fat-backup list --json`'s entries, newest first."""
    return [{"name": n, "kind": n.split("Z-", 1)[1]} for n in names]


def test_preferred_backup_passes_over_the_timers_newer_ones() -> None:
    assert preferred_backup(listed(LATER_TIMER, EMPTY_TIMER, PRE_UPGRADE, PRE_SUSPEND)) == (
        PRE_UPGRADE
    )
    assert preferred_backup(listed("20261207T100000Z-manual", PRE_UPGRADE)) == (
        "20261207T100000Z-manual"
    )
    # Only timer backups: the newest of them is still better than nothing.
    assert preferred_backup(listed(LATER_TIMER, EMPTY_TIMER)) == LATER_TIMER
    assert preferred_backup([]) is None


class Box:
    """The stand-in for the box steps of the flow a resume continues (see the docstring)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, listing: list[dict[str, object]]):
        self.listing = listing
        self.asked: list[str | None] = []
        self.fail_restore = True
        self.real = flow.continue_provision
        monkeypatch.setattr(flow, "continue_provision", self.continue_provision)

    def continue_provision(self, db: Any, ring: Any, settings: Any, infra: Any, name: str,
                           actor: str, opts: flow.Options) -> Any:  # fmt: skip
        self.asked.append(opts.restore_from)
        restoring = opts.restore_from
        if restoring == LATEST_BACKUP:  # as box.restore_state resolves it
            restoring = preferred_backup(self.listing)
            assert restoring and opts.chose_restore is not None
            opts.chose_restore(restoring)
        if self.fail_restore:  # an SSH timeout or a failed restore preflight
            self.fail_restore = False
            raise BackupFailed(f"restore on {name} failed: timed out")
        # The cloud steps for real (the new server on the kept IPs); no box to restore on.
        real = replace(opts, skip=BOX_STEPS, validate=False, restore_from=None)
        return self.real(db, ring, settings, infra, name, actor, real)


def boxed(plane: Plane) -> lifecycle.Context:
    """A context that reaches boxes (so resume restores); the box steps are stood in for."""
    return replace(context(plane), skip_box=False)


def remembered_backup(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The suspend's backup step as it ends on a box: the name `fat-backup run` answered."""

    def backup_stopped(ctx: Any, op: Any, kind: str) -> dict[str, object]:
        op.remember(backup=name)
        return {"backup": name}

    monkeypatch.setattr(lifecycle, "backup_stopped", backup_stopped)


def test_a_rerun_resume_restores_the_suspends_backup_not_a_newer_timer_one(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(plane, "sleeper")
    remembered_backup(monkeypatch, PRE_SUSPEND)
    lifecycle.suspend(boxed(plane), "sleeper")
    box = Box(monkeypatch, listed(PRE_SUSPEND))
    with pytest.raises(BackupFailed):
        lifecycle.resume(boxed(plane), "sleeper")
    box.listing = listed(EMPTY_TIMER, PRE_SUSPEND)  # that night the new box's timer ran
    out = lifecycle.resume(boxed(plane), "sleeper")
    assert box.asked == [PRE_SUSPEND, PRE_SUSPEND]
    assert agent(plane, "sleeper").suspended_at is None
    [_, resumed] = ops_of(plane.db, "sleeper")
    assert (resumed.kind, resumed.state, resumed.params["restore_from"]) == (
        "resume", "done", PRE_SUSPEND)  # fmt: skip
    [provision_step] = [s for s in out.steps if s["step"] == "provision"]
    assert provision_step["restored"] == PRE_SUSPEND


def test_without_a_suspend_backup_latest_is_resolved_once_and_kept(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(plane, "dozer")
    lifecycle.suspend(context(plane), "dozer", no_backup=True)
    box = Box(monkeypatch, listed(EMPTY_TIMER, PRE_UPGRADE))
    with pytest.raises(BackupFailed):
        lifecycle.resume(boxed(plane), "dozer")
    box.listing = listed(LATER_TIMER, EMPTY_TIMER, PRE_UPGRADE)
    lifecycle.resume(boxed(plane), "dozer")
    # The first run resolved "latest" on the box, past the timer's backup; the rerun asks for
    # that very name, whatever the listing shows by then.
    assert box.asked == [LATEST_BACKUP, PRE_UPGRADE]
    assert agent(plane, "dozer").suspended_at is None
    assert ops_of(plane.db, "dozer")[-1].params["restore_from"] == PRE_UPGRADE


def test_provision_refuses_a_suspended_or_archived_agent_in_one_line(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any
) -> None:
    """H2: a plain provision would start a suspended agent's gateway on an empty disk."""
    fatctl, _ = operator_cli(tmp_path, hetzner_emulator, cloudflare_emulator)
    for name in ("napper", "leaver"):
        fatctl("provision", name, "--owner", "nap@example.com", "--no-box")
    fatctl("suspend", "napper", "--no-box", "--no-backup", "--yes")
    fatctl("archive", "leaver", "--no-box", "--no-backup", "--yes")
    before = (hetzner_emulator.stats()["total"], fatctl("agents", "list", "--json").stdout)

    for name, says in (("napper", "is suspended: `fatctl resume napper` brings it back"),
                       ("leaver", "is archived: it cannot be provisioned again")):  # fmt: skip
        for extra in ((), ("--dry-run",)):
            refused = fatctl("provision", name, "--owner", "nap@example.com", "--no-box",
                             *extra, check=2)  # fmt: skip
            assert refused.stderr.count("\n") == 1 and says in refused.stderr, refused.stderr
    assert (hetzner_emulator.stats()["total"], fatctl("agents", "list", "--json").stdout) == (
        before
    )
