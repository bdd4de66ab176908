"""The process's service runtime: what the workflows' steps need, held while DBOS runs.

Workflow inputs are stored, so they cannot carry fatctl's engine, key ring or cloud engine:
the steps read them from here. `runtime.running()` sets it and clears it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fatctl.clock import Clock, wall_clock
from fatctl.errors import StateError
from fatctl.pacing.poll import Backoff

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.infra.engine import InfraEngine
    from fatctl.secrets import KeyRing
    from fatctl.service.reaper import Pace

AGENTS_QUEUE = "agents"
# The workflows' version in DBOS's tables (its `application_version`): recovery and dequeuing
# take only rows of the running version. Bump it only when a workflow's inputs or steps change
# shape, never with fatctl's release.
WORKFLOW_VERSION = "fatctl-wf-1"
# Work for one agent runs one at a time (the partition is the agent's name); across agents the
# limit keeps one process from opening more cloud flows than its rate budgets can feed.
AGENT_PARTITION_CONCURRENCY = 1
AGENTS_WORKER_CONCURRENCY = 10


@dataclass
class Runtime:
    """What the workflows' steps need in this process: the state database, the key ring, the
    settings and a way to build the cloud engine; `skip_box` is the API-only mode (`--no-box`:
    stop after infra and DNS, as the API-layer sandbox has no boxes)."""

    db: Engine
    ring: KeyRing
    settings: Settings
    make_infra: Callable[[], InfraEngine]
    skip_box: bool = False
    backoff: Backoff = field(default_factory=Backoff)
    executor_id: str = field(default_factory=lambda: f"serve-{socket.gethostname()}")
    queue_poll_s: float = 1.0
    # Register the recurring work (service.schedules) at launch: `fatctl serve` does; tests of
    # other flows leave it off, so no firing lands in the middle of them.
    schedules: bool = False
    # The service's clock: a scheduled run judges expiry against max(its firing time, this).
    clock: Clock = wall_clock
    # How a box takes new R2 credentials (rotate_one's env_path/after); {} is the box's own
    # layout. Tests point it at an sshd host's home.
    rotation_delivery: dict[str, str] = field(default_factory=dict)
    # Several service processes on one database (fatctl worker, serve --workers N): beat and
    # take over dead ones (service.reaper) and share the clouds' rate budgets in the database
    # (pacing.shared_budget). None: a process alone, as the tests of single flows run.
    workers: Pace | None = None
    # Dequeue the queues here. `fatctl serve --workers N` (N > 0) says no: its workers do.
    listen: bool = True
    # What to do once another worker took this one over (service.reaper): the worker exits.
    on_lost: Callable[[], None] | None = None


_current: list[Runtime] = []  # at most one: DBOS is one per process


def current() -> Runtime:
    """The running process's runtime; a workflow step outside `running()` is a bug."""
    if not _current:
        raise StateError("the fatctl service runtime is not running")
    return _current[0]


def install(runtime: Runtime) -> None:
    if _current:
        raise StateError("the fatctl service runtime is already running in this process")
    _current.append(runtime)


def clear() -> None:
    _current.clear()
