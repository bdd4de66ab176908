"""One box's upgrade over SSH: install beside, test-boot, switch, restart, health gate, rollback.

Runs the pure builders of `fatctl.remote.commands.upgrade` through the runner and returns a
`HostOutcome`; it never touches the database (the engine records before and after). A host that
cannot be reached is `unreachable`, a gate that fails after the switch is rolled back to the
version the box ran before, and that version must pass the gate again to count as rolled back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fatctl.remote.commands import upgrade as cmd
from fatctl.remote.fanout import run_one
from fatctl.remote.runner import Pool, Result
from fatctl.remote.target import Target

INSTALL_TIMEOUT_S = 900.0
STEP_TIMEOUT_S = 60.0


class _Unreachable(Exception):
    pass


class _StepFailed(Exception):
    pass


@dataclass(frozen=True)
class HostOutcome:
    phase: str  # succeeded, failed, rolled_back, unreachable
    from_version: str
    error: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class HostUpgrade:
    """The work for one host towards `version`; `sleep`/`clock` injectable for tests."""

    pool: Pool
    layout: cmd.BoxLayout
    version: str
    health_timeout_s: float
    keep_versions: int
    poll_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    notes: list[str] = field(default_factory=list)

    def _run(
        self, target: Target, command: str, what: str, timeout: float = STEP_TIMEOUT_S
    ) -> Result:
        result = run_one(self.pool, target, command, timeout=timeout)
        if result.error is not None:
            raise _Unreachable(f"{what}: {result.error}")
        if result.exit_code != 0:
            last = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exit_code}"]
            raise _StepFailed(f"{what} failed: {last[0][:200]}")
        return result

    def healthy_once(self, target: Target, version: str) -> str | None:
        """None when healthy on `version`, else why not."""
        result = run_one(self.pool, target, cmd.health(self.layout), timeout=STEP_TIMEOUT_S)
        if result.error is not None:
            raise _Unreachable(f"health: {result.error}")
        try:
            report = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            report = {}
        if result.exit_code != 0 or report.get("healthy") is False:
            problems = report.get("problems") or [result.stderr.strip()[-200:] or "unhealthy"]
            return "; ".join(str(p) for p in problems)
        running = report.get("runtime_version")
        if running and running != version:
            return f"box reports runtime {running}, expected {version}"
        return None

    def gate(self, target: Target, version: str) -> str | None:
        """Healthy twice in a row within the timeout (one pass can catch a crashing start)."""
        deadline = self.clock() + self.health_timeout_s
        passes, why = 0, "no health check ran"
        while self.clock() < deadline:
            why_now = self.healthy_once(target, version)
            passes = passes + 1 if why_now is None else 0
            if passes >= 2:
                return None
            why = why_now or why
            self.sleep(self.poll_s)
        return f"health gate failed within {self.health_timeout_s:g}s: {why}"

    def current(self, target: Target) -> str:
        return self._run(target, cmd.current_version(self.layout), "reading current").stdout.strip()

    def activate(self, target: Target, version: str) -> str | None:
        """Switch, restart, gate: None when `version` serves healthily."""
        self._run(target, cmd.switch(self.layout, version), f"switch to {version}")
        self._run(target, cmd.restart(self.layout), "restart")
        return self.gate(target, version)

    def rollback(self, target: Target, previous: str, why: str) -> HostOutcome:
        if not previous or previous == self.version:
            return HostOutcome("failed", previous, f"{why}; no earlier version to switch back to")
        try:
            back = self.activate(target, previous)
        except (_StepFailed, _Unreachable) as exc:
            return HostOutcome("failed", previous, f"{why}; rollback failed: {exc}")
        if back is not None:
            return HostOutcome(
                "failed", previous, f"{why}; {previous} unhealthy after rollback: {back}"
            )
        return HostOutcome("rolled_back", previous, why)

    def upgrade(
        self, target: Target, record_from: Callable[[str], None], resumed_from: str
    ) -> HostOutcome:
        """The whole step; `record_from` stores the old version before anything is switched."""
        previous = resumed_from
        try:
            current = self.current(target)
            if current == self.version:
                # Already switched (a resumed step, or a box at the version): verify only.
                why = self.gate(target, self.version)
                if why is None:
                    return HostOutcome(
                        "succeeded", previous or current, notes=("already on version",)
                    )
                return self.rollback(target, previous, why)
            previous = current
            record_from(previous)
            self._run(target, cmd.install(self.layout, self.version), "install", INSTALL_TIMEOUT_S)
            self._run(target, cmd.verify(self.layout, self.version), "test boot")
            why = self.activate(target, self.version)
            if why is not None:
                return self.rollback(target, previous, why)
            self.prune(target, previous)
            return HostOutcome("succeeded", previous, notes=tuple(self.notes))
        except _Unreachable as exc:
            return HostOutcome("unreachable", previous, str(exc))
        except _StepFailed as exc:
            return self.rollback_if_switched(target, previous, str(exc))

    def rollback_if_switched(self, target: Target, previous: str, why: str) -> HostOutcome:
        """A step failed: roll back only if `current` already moved off the old version."""
        try:
            now = self.current(target)
        except (_StepFailed, _Unreachable) as exc:
            return HostOutcome("unreachable", previous, f"{why}; then {exc}")
        if now == self.version:
            return self.rollback(target, previous, why)
        return HostOutcome("failed", previous, why)

    def prune(self, target: Target, previous: str) -> None:
        """Best effort: a failed prune is a note, not a failed upgrade."""
        try:
            done = self._run(
                target,
                cmd.prune(self.layout, self.keep_versions, (previous,) if previous else ()),
                "prune",
            )
            self.notes.extend(
                line for line in done.stdout.splitlines() if line.startswith("pruned")
            )
        except (_StepFailed, _Unreachable) as exc:
            self.notes.append(str(exc))

    def roll_back_to(self, target: Target, previous: str) -> HostOutcome:
        """Abort: put `previous` back unless the box never left it."""
        try:
            if self.current(target) == previous:
                return HostOutcome("rolled_back", previous, "aborted before the switch")
        except (_StepFailed, _Unreachable) as exc:
            return HostOutcome("unreachable", previous, str(exc))
        back = self.rollback(target, previous, "aborted by operator")
        if back.phase != "failed":
            return back
        # The old version will not serve (e.g. OpenClaw refuses a state schema the new one
        # migrated): an abort must not leave the box down, so go forward to what was healthy.
        try:
            again = self.activate(target, self.version)
        except (_StepFailed, _Unreachable) as exc:
            return HostOutcome("failed", previous, f"{back.error}; restoring failed: {exc}")
        if again is not None:
            return HostOutcome("failed", previous, f"{back.error}; {self.version}: {again}")
        return HostOutcome("succeeded", previous, f"{back.error}; kept {self.version}")
