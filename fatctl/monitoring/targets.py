"""Which boxes a sweep probes: every agent whose box is meant to be running, by its name.

`by_address` sends each request to the address the state database records for the box, with
the name as SNI and Host, the way provisioning checks HTTPS in the sandbox and before a DNS
record has spread (`services.provision.box.check_https`).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fatctl.errors import ConfigError
from fatctl.monitoring.probe import ProbeTarget, trust
from fatctl.services.common.https_probe import HTTPS_PORT
from fatctl.state.fastread import list_agent_rows

if TYPE_CHECKING:
    from fatctl.config import Settings

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


def configured_targets(rows: Iterable[Mapping[str, Any]], settings: Settings) -> list[ProbeTarget]:
    """`fleet_targets` the way the settings say to reach the boxes: `probe_port`, and with
    `probe_by_address` = 1 at each box's recorded address instead of through DNS."""
    try:
        port = int(settings.probe_port)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"probe_port must be a TCP port number, not {settings.probe_port!r}")
    by_address = settings.probe_by_address.strip() == "1"
    try:
        return fleet_targets(rows, settings.domain, by_address=by_address, port=port)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def configured_trust(settings: Settings) -> ssl.SSLContext:
    """The certificates a probe accepts: the system's roots, or only `probe_ca_file`'s."""
    if not settings.probe_ca_file:
        return trust()
    try:
        pem = Path(settings.probe_ca_file).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read probe_ca_file {settings.probe_ca_file}: "
                          f"{exc.strerror or type(exc).__name__}") from None  # fmt: skip
    try:
        return trust(pem)
    except (ssl.SSLError, ValueError):
        where = settings.probe_ca_file
        raise ConfigError(f"probe_ca_file {where} holds no PEM certificate") from None
