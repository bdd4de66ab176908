"""Which boxes a sweep probes: every agent whose box is meant to be running, by its name.

`by_address` sends each request to the address the state database records for the box, with
the name as SNI and Host, the way provisioning checks HTTPS in the sandbox and before a DNS
record has spread (`services.provision.box.check_https`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fatctl.monitoring.probe import ProbeTarget
from fatctl.services.common.https_probe import HTTPS_PORT
from fatctl.state.fastread import list_agent_rows

# States in which a box is meant to be running and answering: the only agents that are probed
# or get per-agent series (a destroyed agent's credentials expiring is no alert).
RUNNING_STATES = ("ready", "upgrading", "degraded")


def fleet_targets(
    rows: Iterable[Mapping[str, Any]],
    domain: str,
    *,
    by_address: bool = False,
    port: int = HTTPS_PORT,
) -> list[ProbeTarget]:
    """One target per agent row (`name`, `ipv4`, `ipv6`), in the rows' order."""
    if not domain:
        raise ValueError("no domain to probe agents at: set FATCTL_DOMAIN (agents are served at "
                         "<agent>.<domain>)")  # fmt: skip
    return [
        ProbeTarget(
            row["name"],
            f"{row['name']}.{domain}",
            (row.get("ipv4") or row.get("ipv6") or None) if by_address else None,
            port,
        )
        for row in rows
    ]


def running_targets(url: str, domain: str, **options: Any) -> list[ProbeTarget]:
    """`fleet_targets` for the running agents of the state database at `url`."""
    return fleet_targets(list_agent_rows(url, states=RUNNING_STATES), domain, **options)
