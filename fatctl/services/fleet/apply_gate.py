"""The health gate `fatctl apply` runs after a box was power-cycled: wait until it answers on SSH
(pinned host key, as always), then the same gate as rollouts (fat-health twice in a row, on the
runtime version the database records) within one overall timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fatctl.errors import RemoteError
from fatctl.pacing.poll import Poll
from fatctl.services.common.targets import agent_target
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.remote.commands.upgrade import BoxLayout
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target


AFTER_RESIZE = Poll(2.0)  # a power-cycled box: ask every two seconds until it answers


def wait_for_ssh(
    pool: Pool,
    target: Target,
    deadline: float,
    poll: Poll,
) -> None:
    """Return once `true` runs on the box; RemoteError naming the last failure at the deadline."""
    from fatctl.remote.fanout import run_one

    last = "no attempt"
    while True:
        result = run_one(pool, target, "true", timeout=15.0)
        if result.error is None and result.exit_code == 0:
            return
        last = result.error or f"exit {result.exit_code}"
        if poll.expired(deadline):
            raise RemoteError(f"{target.name} did not come back on SSH: {last}")
        poll.pause()


def ssh_health_gate(
    db: Engine,
    settings: Settings,
    layout: BoxLayout,
    timeout_s: float,
    *,
    poll: Poll = AFTER_RESIZE,
) -> Callable[[str], str | None]:
    """A gate for `ApplyRun.gate`: None when the agent is healthy again, else why not."""

    def gate(agent: str) -> str | None:
        from fatctl.remote.runner import Pool
        from fatctl.services.rollout.upgrade import HostUpgrade

        target = agent_target(db, settings, agent)
        version = _runtime_version(db, agent)
        deadline = poll.deadline(timeout_s)
        with Pool() as pool:
            wait_for_ssh(pool, target, deadline, poll)
            left = max(poll.interval, poll.left(deadline))
            work = HostUpgrade(pool, layout, version, left, 1, poll)
            try:
                return work.gate(target, version)
            except Exception as exc:  # rollout_host's private "unreachable" signal
                raise RemoteError(f"{agent}: {exc}") from None

    return gate


def _runtime_version(db: Engine, agent: str) -> str:
    from fatctl.state import repo

    with session_scope(db) as session:
        return repo.get_agent(session, agent).runtime_version
