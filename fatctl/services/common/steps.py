"""Recorded, resumable steps for long flows (provision, destroy).

Every step is announced before its side effect and recorded after it (`Agent.last_step`, an
audit event, a progress event with its elapsed time), so a rerun after a failure or a kill
knows what already happened. Their waits take a `fatctl.pacing.poll.Backoff`, which tests set
to zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from fatctl.errors import FatctlError
from fatctl.sensitive import redact
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

T = TypeVar("T")
Emit = Callable[..., None]  # emit(kind, **fields): progress for people or a JSON event stream

PROVISION_STEPS = (
    "validate",
    "reserve",
    "material",
    "render",
    "dns",  # before the server, at its primary IPs: the name resolves when Caddy first asks
    "infra",
    "ssh",
    "cloud_init",  # before secrets: the files' directories exist once cloud-init is done
    "secrets",
    # Restore-before-start (issue 18): with a backup to restore, `secrets` holds the gateway's
    # environment back (no env, no gateway: it never starts on an empty state), `restore` puts
    # the backup in place, `start` delivers the environment. Skipped when nothing is restored.
    "restore",
    "start",
    "health",
    "ready",
)
LATEST_BACKUP = "latest"  # restore the newest complete backup in the agent's R2 prefix
# Steps that talk to the box itself; the API-only sandbox (and the bench) skips them.
BOX_STEPS = frozenset({"ssh", "secrets", "cloud_init", "restore", "start", "health"})


def step_index(name: str) -> int:
    return PROVISION_STEPS.index(name) if name in PROVISION_STEPS else -1


@dataclass
class StepLog:
    """Records each step of one run for one agent: DB row, audit trail and progress events."""

    engine: Engine
    agent: str
    actor: str
    emit: Emit
    flow: str = "provision"
    results: list[dict[str, object]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def _audit(self, step: str, result: str, detail: dict[str, object]) -> None:
        from fatctl.state import repo

        with session_scope(self.engine) as session:
            repo.audit(
                session,
                actor=self.actor,
                action=f"{self.flow}.{step}",
                target=self.agent,
                result=result,
                detail=detail,
            )

    def _last_step(self, step: str, error: str = "") -> None:
        from fatctl.state import repo
        from fatctl.state.models import utcnow

        with session_scope(self.engine) as session:
            row = repo.get_agent(session, self.agent)
            # Only forward: rerunning a cheap early step must not hide later finished ones.
            if not error and step_index(step) > step_index(row.last_step):
                row.last_step = step
            row.last_error = error[:500]
            row.updated_at = utcnow()
            session.add(row)

    def run(self, step: str, action: Callable[[], dict[str, object] | None]) -> None:
        """Record, do, record. A failure is recorded (last_error, audit) and re-raised.

        The `started` audit row is written before the side effect, so a run killed inside it
        leaves a started step with no outcome: what a rerun (and an operator) must check."""
        self._audit(step, "started", {})
        self.emit("step.start", agent=self.agent, step=step)
        t0 = time.monotonic()
        try:
            detail = action() or {}
        except FatctlError as exc:
            self.fail(step, exc.one_line(), time.monotonic() - t0)
            raise
        elapsed = round(time.monotonic() - t0, 3)
        if self.flow == "provision" and step_index(step) >= 0:
            self._last_step(step)
        self._audit(step, "ok", {**detail, "elapsed_s": elapsed})
        self.results.append({"step": step, "result": "ok", "elapsed_s": elapsed, **detail})
        self.emit("step.done", agent=self.agent, step=step, elapsed_s=elapsed, **detail)

    def fail(self, step: str, error: str, elapsed: float) -> None:
        line = redact(error)
        self._last_step(step, error=line or "failed")
        self._audit(step, "failed", {"error": line})
        self.results.append({"step": step, "result": "failed", "error": line})
        self.emit(
            "step.failed", agent=self.agent, step=step, elapsed_s=round(elapsed, 3), error=line
        )

    def note(self, step: str, result: str, why: str) -> None:
        """A step not run this time (already done by an earlier run, or skipped by request)."""
        self.results.append({"step": step, "result": result, "note": why})
        self.emit(f"step.{result}", agent=self.agent, step=step, note=why)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)
