"""Restore-before-start and backup-before-risky-changes, the parts that need no box (issue 18).

The provision flow's plan with `restore_from` is pure (`provision.flow.step_fate`); destroy's
backup-first rule runs against the Hetzner and Cloudflare emulators with an agent whose box
cannot be reached (its address answers no SSH), which is what a dead box looks like to fatctl.
The box-side proof (state back after `fatctl rebuild`) is tests/e2e/test_rebuild.py.
"""

from __future__ import annotations

import pytest

from fatctl.errors import BadInput
from fatctl.services.common.steps import BOX_STEPS, LATEST_BACKUP, PROVISION_STEPS, step_index
from fatctl.services.provision.flow import Options, restore_point, step_fate

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
