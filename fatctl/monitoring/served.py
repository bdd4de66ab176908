"""What `fatctl serve` exposes on `/metrics`: the fleet collector over the state database.

The probe history comes from `probe_results` (what the service's sweeps stored,
`store.stored_history`, running agents only), so any process that can read the database serves
the same answer, and a restart loses nothing. fat-health's disk, memory, channels and gateway
restarts come from the rows of the boxes the sweeps asked over SSH (`store.stored_box_figures`):
a box never asked has no such series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from fatctl.monitoring.metrics import Sources, fleet_registry
from fatctl.monitoring.store import stored_box_figures, stored_history
from fatctl.monitoring.targets import RUNNING_STATES
from fatctl.monitoring.workflows import workflow_counts


def stored_sources(state_url: str) -> Sources:
    return Sources(
        state_url=state_url,
        probe_history=lambda: stored_history(state_url, states=RUNNING_STATES),
        box_figures=lambda: stored_box_figures(state_url, states=RUNNING_STATES),
        workflows=lambda: workflow_counts(state_url),
    )


def served_registry(state_url: str) -> CollectorRegistry:
    return fleet_registry(stored_sources(state_url))
