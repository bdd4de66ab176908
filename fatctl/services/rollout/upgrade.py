"""One box's upgrade over SSH: install beside, test-boot, switch, restart, health gate, rollback.

Runs the pure builders of `fatctl.remote.commands.upgrade` through the runner and returns a
`HostOutcome`; it never touches the database (the engine records before and after). A host that
cannot be reached is `unreachable`, a gate that fails after the switch is rolled back to the
version the box ran before, and that version must pass the gate again to count as rolled back.

Sessions (bench/rollout.py measured 50-90 ms each on a loaded host): install, test boot, switch
and restart are one session (`cmd.activation`), the prune of old versions rides in the session of
the gate's last health pass; a healthy upgrade takes four: read, activation, two health passes.
Every command that reads or moves the runtime holds the box's rollout lock (`cmd.locked`), so a
resumed step waits for the remote command a killed fatctl left running and then sees its result.

A rollback whose old version will not serve on the state the new one left (OpenClaw migrates
its database forward; the old runtime refuses a newer schema) puts the state backup taken
before the upgrade back (`kinds.backup_first`, `restore`) and gates again: time travel to the
moment before the upgrade, taken only when the old version cannot run otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fatctl.domain import StepPhase
from fatctl.errors import FatctlError
from fatctl.pacing.poll import Backoff, Poll
from fatctl.remote.commands import upgrade as cmd
from fatctl.remote.commands.staged import parse
from fatctl.remote.fanout import run_one
from fatctl.remote.runner import Pool, Result
from fatctl.remote.target import Target
from fatctl.services.backup.on_box import restore_backup
from fatctl.services.rollout.gate import (
    STEP_TIMEOUT_S,
    Gate,
    StepFailed,
    Unreachable,
    checked,
    run_checked,
)
from fatctl.services.rollout.kinds import JobKind, register

if TYPE_CHECKING:
    from fatctl.services.rollout.engine import Job, Run
    from fatctl.state.models import RolloutStep

INSTALL_TIMEOUT_S = 900.0
# A locked command may first wait for the lock (an orphan of a killed fatctl still holding it).
LOCKED_STEP_TIMEOUT_S = STEP_TIMEOUT_S + cmd.LOCK_WAIT_S


@dataclass(frozen=True)
class HostOutcome:
    phase: str  # succeeded, failed, rolled_back, unreachable
    from_version: str
    error: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class HostUpgrade:
    """The work for one host towards `version`; `poll` injectable for tests.

    `domain` turns on the HTTPS half of the gate (see `rollout.gate`)."""

    pool: Pool
    layout: cmd.BoxLayout
    version: str
    health_timeout_s: float
    keep_versions: int
    poll: Poll = field(default_factory=Poll)
    notes: list[str] = field(default_factory=list)
    domain: str = ""
    # Puts the pre-upgrade state backup back (True), or finds none was taken (False).
    restore: Callable[[Target], bool] | None = None

    def _run(
        self, target: Target, command: str, what: str, timeout: float = STEP_TIMEOUT_S
    ) -> Result:
        return run_checked(self.pool, target, command, what, timeout)

    def _gate(self) -> Gate:
        return Gate(
            self.pool,
            cmd.health(self.layout),
            self.health_timeout_s,
            self.domain,
            self.poll,
            notes=self.notes,
        )

    def healthy_once(self, target: Target, version: str) -> str | None:
        """None when healthy on `version`, else why not."""
        return self._gate().healthy_once(target, version)

    def gate(self, target: Target, version: str) -> str | None:
        """`fat-health` healthy twice in a row within the timeout, then HTTPS where it resolves."""
        return self._gate().wait(target, version)

    def current(self, target: Target) -> str:
        read = cmd.current_version(self.layout)
        return self._run(target, read, "reading current", LOCKED_STEP_TIMEOUT_S).stdout.strip()

    def activate(
        self, target: Target, version: str, prune: str | None = None, install: bool = False
    ) -> str | None:
        """[Install and test-boot,] switch, restart, gate: None when `version` serves healthily.
        With `prune` (the version to keep besides `current`), old versions are pruned in the
        session of the gate's last health pass, only once that pass's `fat-health` succeeded."""
        self._activation(target, version, install)
        gate = self._gate()
        after = None
        if prune is not None:
            protect = (prune,) if prune else ()
            after = ("prune", cmd.prune(self.layout, self.keep_versions, protect))
        why = gate.wait(target, version, after=after)
        if why is None and gate.after_output is not None:
            self.notes.extend(self._pruned(gate.after_output))
        return why

    def _activation(self, target: Target, version: str, install: bool) -> None:
        """Run `cmd.activation`; a failure is named by the stage it happened in."""
        timeout = LOCKED_STEP_TIMEOUT_S + 3 * STEP_TIMEOUT_S
        if install:
            timeout += INSTALL_TIMEOUT_S
        command = cmd.activation(self.layout, version, install_first=install)
        result = run_one(self.pool, target, command, timeout=timeout)
        started = parse(result.stdout).started
        checked(result, started[-1] if started else "waiting for the rollout lock")

    @staticmethod
    def _pruned(output: str) -> list[str]:
        """The notes a prune leaves: what it removed, or that it failed (never fatal)."""
        return [line for line in output.splitlines() if line.startswith(("pruned", "prune failed"))]

    def rollback(self, target: Target, previous: str, why: str) -> HostOutcome:
        if not previous or previous == self.version:
            return HostOutcome(
                StepPhase.FAILED, previous, f"{why}; no earlier version to switch back to"
            )
        try:
            back = self.activate(target, previous)
        except (StepFailed, Unreachable) as exc:
            return HostOutcome(StepPhase.FAILED, previous, f"{why}; rollback failed: {exc}")
        if back is not None:
            return self.restore_state(target, previous, f"{why}; {previous} unhealthy after "
                                      f"rollback: {back}")  # fmt: skip
        return HostOutcome(StepPhase.ROLLED_BACK, previous, why)

    def restore_state(self, target: Target, previous: str, why: str) -> HostOutcome:
        """The old version is back but does not serve: put the state from before the upgrade
        back (when a backup was taken) and gate `previous` again."""
        try:
            if self.restore is None or not self.restore(target):
                return HostOutcome(StepPhase.FAILED, previous, why)
            again = self.gate(target, previous)
        except (FatctlError, StepFailed, Unreachable) as exc:
            return HostOutcome(StepPhase.FAILED, previous, f"{why}; restoring the backup: {exc}")
        if again is not None:
            return HostOutcome(StepPhase.FAILED, previous, f"{why}; after the backup: {again}")
        return HostOutcome(StepPhase.ROLLED_BACK, previous, f"{why}; pre-upgrade backup restored")

    def upgrade(
        self, target: Target, record_from: Callable[[str], None], resumed_from: str
    ) -> HostOutcome:
        """The whole step; `record_from` stores the old version before anything is switched."""
        previous = resumed_from
        try:
            current = self.current(target)
            if current == self.version:
                # Already switched (a resumed step, or a box at the version): restart only a
                # gateway still running from before the switch, then verify.
                self.restart_if_stale(target)
                why = self.gate(target, self.version)
                if why is None:
                    return HostOutcome(
                        StepPhase.SUCCEEDED, previous or current, notes=("already on version",)
                    )
                return self.rollback(target, previous, why)
            previous = current
            record_from(previous)
            why = self.activate(target, self.version, prune=previous, install=True)
            if why is not None:
                return self.rollback(target, previous, why)
            return HostOutcome(StepPhase.SUCCEEDED, previous, notes=tuple(self.notes))
        except Unreachable as exc:
            return HostOutcome(StepPhase.UNREACHABLE, previous, str(exc))
        except StepFailed as exc:
            return self.rollback_if_switched(target, previous, str(exc))

    def restart_if_stale(self, target: Target) -> None:
        check = cmd.restart_if_stale(self.layout)
        done = self._run(target, check, "checking restart", LOCKED_STEP_TIMEOUT_S)
        if done.stdout.strip().splitlines()[-1:] == ["restarted"]:
            self.notes.append("restarted: the gateway predated the switch")

    apply = upgrade  # the name the rollout engine calls on every kind of host work

    def rollback_if_switched(self, target: Target, previous: str, why: str) -> HostOutcome:
        """A step failed: roll back only if `current` already moved off the old version."""
        try:
            now = self.current(target)
        except (StepFailed, Unreachable) as exc:
            return HostOutcome(StepPhase.UNREACHABLE, previous, f"{why}; then {exc}")
        if now == self.version:
            return self.rollback(target, previous, why)
        return HostOutcome(StepPhase.FAILED, previous, why)

    def roll_back_to(self, target: Target, previous: str) -> HostOutcome:
        """Abort: put `previous` back unless the box never left it."""
        try:
            if self.current(target) == previous:
                return HostOutcome(StepPhase.ROLLED_BACK, previous, "aborted before the switch")
        except (StepFailed, Unreachable) as exc:
            return HostOutcome(StepPhase.UNREACHABLE, previous, str(exc))
        back = self.rollback(target, previous, "aborted by operator")
        if back.phase != StepPhase.FAILED:
            return back
        # The old version will not serve (e.g. OpenClaw refuses a state schema the new one
        # migrated): an abort must not leave the box down, so go forward to what was healthy.
        try:
            again = self.activate(target, self.version)
        except (StepFailed, Unreachable) as exc:
            return HostOutcome(StepPhase.FAILED, previous, f"{back.error}; restoring failed: {exc}")
        if again is not None:
            return HostOutcome(StepPhase.FAILED, previous, f"{back.error}; {self.version}: {again}")
        return HostOutcome(StepPhase.SUCCEEDED, previous, f"{back.error}; kept {self.version}")


def upgrade_work(run: Run, pool: Pool, job: Job, step: RolloutStep, name: str) -> HostUpgrade:
    """An upgrade step towards the step's recorded version (the rollout's, unless resumed)."""
    return HostUpgrade(
        pool,
        run.layout,
        step.to_version or job.target,
        job.policy.health_timeout_s,
        job.policy.keep_versions,
        run.poll,
        domain=run.settings.domain if run.https else "",
        restore=_restorer(run, pool, job, step),
    )


def _restorer(run: Run, pool: Pool, job: Job, step: RolloutStep) -> Callable[[Target], bool]:
    """Restore the step's pre-upgrade backup (`rollout_steps.backup_key`) and wait for the
    box's health; False when the step took none."""

    def restore(target: Target) -> bool:
        if not step.backup_key:
            return False
        from fatctl.secrets import keyring_from

        ring = keyring_from(run.settings.master_key, run.settings.previous_master_keys)
        name = step.backup_key.rsplit("/", 1)[-1].removesuffix(".tar.gz.age")  # the object's
        restore_backup(run.engine, ring, pool, target, Backoff(timeout=job.policy.health_timeout_s),
                       name=name, actor=run.actor)  # fmt: skip
        return True

    return restore


# Undoing an upgrade is the same work rolled back to the step's `from_version`.
UPGRADE = register(JobKind("upgrade", upgrade_work, upgrade_work, sets_runtime=True, backs_up=True))
