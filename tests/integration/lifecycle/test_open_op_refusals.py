"""Flows that change a box outside the lifecycle ops leave an agent with an unfinished op alone
(review 28, M3), and fleet-wide selections leave out agents with no box (M4).

A suspend that failed after its backup keeps the gateway stopped; a push, an upgrade or a
converge restarting it would take writes that the suspend's rerun then deletes with the server.
Each flow is refused in one line (exit 2) naming the op and the command that finishes it, before
anything reaches the box; a rollout skips such a host (not a failure: it cannot trip
--max-failures) and an R2 rotation reports it `busy`. In process, against the emulators; no box
is reached: every refusal comes before the first SSH connection.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from fatctl.domain import RolloutPolicy, RolloutState, StepPhase
from fatctl.pacing.poll import Backoff
from fatctl.remote.commands.upgrade import BoxLayout
from fatctl.services.backup.on_box import restore_backup
from fatctl.services.common.open_ops import OpInProgress
from fatctl.services.common.targets import agent_target, select_targets
from fatctl.services.lifecycle.ops import lifecycle_op
from fatctl.services.lifecycle.suspend import suspend
from fatctl.services.rollout import engine as rollout
from fatctl.services.serving.push import push
from fatctl.services.storage.r2_rotation import rotate_one
from tests.integration.lifecycle.test_suspend_archive import NOW, agent, context, provisioned


class Failed(Exception):
    """A suspend step's failure (a Hetzner 5xx after the backup)."""


def failed_suspend(plane: Any, name: str) -> None:
    """A suspend op left `failed` after its backup step, as a Hetzner error at `infra` does."""
    with pytest.raises(Failed), lifecycle_op(plane.db, name, "suspend", "t",
                                             steps=("backup", "infra", "state")) as op:  # fmt: skip
        op.run("backup", lambda: {})
        raise Failed


class NoBox:
    """A pool that fails the test if anything asks it for a connection."""

    def get(self, target: Any) -> Any:
        raise AssertionError(f"{target.name} was reached")


def refusal(exc: pytest.ExceptionInfo[OpInProgress], doing: str) -> str:
    line = exc.value.one_line()
    assert exc.value.exit_code == 2
    assert "agent alpha has an unfinished suspend (op " in line, line
    assert f"{doing} refused" in line and "`fatctl suspend alpha`" in line, line
    return line


def test_push_and_backup_restore_are_refused_during_an_open_op(plane: Any) -> None:
    provisioned(plane, "alpha")
    failed_suspend(plane, "alpha")
    for dry_run in (True, False):
        with pytest.raises(OpInProgress) as exc:
            push(plane.db, plane.ring, plane.settings, "alpha", "t", None, dry_run=dry_run)
        refusal(exc, "push")
    target = agent_target(plane.db, plane.settings, "alpha")
    with pytest.raises(OpInProgress) as exc:
        restore_backup(plane.db, plane.ring, NoBox(), target,  # type: ignore[arg-type]
                       Backoff.instant(), name="x-pre-suspend", outside_op=True)  # fmt: skip
    refusal(exc, "backup restore")


def test_r2_rotation_reports_the_box_busy(plane: Any) -> None:
    provisioned(plane, "alpha")
    failed_suspend(plane, "alpha")
    target = agent_target(plane.db, plane.settings, "alpha")

    def issue(*args: object, **kwargs: object) -> Any:
        raise AssertionError("credentials issued for a box an op owns")

    done = rotate_one(plane.db, plane.ring, plane.settings, NoBox(), target,  # type: ignore[arg-type]
                      now=NOW, force=True, issue=issue)  # fmt: skip
    assert done.action == "busy"
    assert "R2 credential rotation refused" in done.detail


def test_a_rollout_skips_a_host_with_an_open_op_and_does_not_halt(plane: Any) -> None:
    provisioned(plane, "alpha")
    failed_suspend(plane, "alpha")
    # No box listens there: the engine's connection warm-up fails at once, and only a host
    # step that went ahead would fail on it.
    target = replace(agent_target(plane.db, plane.settings, "alpha"), host="127.0.0.1", port=1,
                     connect_timeout=1.0)  # fmt: skip
    run = rollout.Run(plane.db, plane.settings, BoxLayout(), "t", lambda *a, **k: None)
    report = rollout.start(run, [target], "2026.9.7", RolloutPolicy(max_failures=0, backup=False))
    assert report.state == RolloutState.COMPLETED, report
    [step] = report.rows
    assert step["phase"] == StepPhase.SKIPPED, step
    assert "upgrade refused" in str(step["error"]) and "`fatctl suspend alpha`" in str(
        step["error"]
    )


def test_all_leaves_out_suspended_agents(plane: Any) -> None:
    provisioned(plane, "alpha")
    provisioned(plane, "beta")
    suspend(context(plane), "beta", no_backup=True)
    assert agent(plane, "beta").state == "suspended" and agent(plane, "beta").ipv4
    chosen = select_targets(plane.db, plane.settings, all_agents=True)
    assert [t.name for t in chosen] == ["alpha"]
    labelled = select_targets(plane.db, plane.settings, label="state=suspended")
    assert labelled == []


def test_cli_backup_restore_is_refused_in_one_line_with_exit_2(plane: Any) -> None:
    from fatctl.secrets import generate_master_key
    from tests.integration.reconcile.test_reconcile_cli import cli_env, fatctl

    provisioned(plane, "alpha")
    failed_suspend(plane, "alpha")
    # Any master key: the refusal comes before anything sealed is opened.
    env = {**cli_env(plane), "FATCTL_MASTER_KEY": generate_master_key()}
    done = fatctl(env, "backup", "restore", "alpha", "--at",
                  "20261207T030000Z-pre-suspend", "--yes", code=2)  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if "refused" in line]
    assert len(lines) == 1 and "backup restore refused" in lines[0], done.stderr
    assert "`fatctl suspend alpha`" in lines[0]
