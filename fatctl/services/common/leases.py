"""The names and lifetimes of the leases flows take, in one place.

`agent:<name>` is the one lease that serialises everything that changes an agent's box:
provision, destroy, rebuild, reconcile's repairs, rollouts and apply. A lease's TTL only has to
outlive a holder that died without releasing it (a live holder's heartbeat renews it), so each
is the longest the work under it may take, with margin.
"""

from __future__ import annotations

PROVISION_TTL_S = 3600.0  # a whole provisioning run, first boot and health gate included
DESTROY_TTL_S = 1800.0  # DNS, server, stack; also a rebuild
REPAIR_TTL_S = 300.0  # one reconcile repair
ROLLOUT_TTL_S = 6 * 3600.0  # `rollout:<id>`: a whole rollout's driver


def agent_lease(agent: str) -> str:
    """The lease every flow that changes `agent`'s box takes."""
    return f"agent:{agent}"


def rollout_lease(rollout_id: int) -> str:
    """Held by whoever drives (or aborts) a rollout, so two drivers never race."""
    return f"rollout:{rollout_id}"


def box_step_ttl(health_timeout_s: float) -> float:
    """One box's rollout or apply step: four health gates' worth plus half an hour for the
    install and restarts (the heartbeat renews it meanwhile)."""
    return health_timeout_s * 4 + 1800
