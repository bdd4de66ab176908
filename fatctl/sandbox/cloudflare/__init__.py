"""The sandbox's Cloudflare API emulator (zones, DNS records, R2 temporary credentials).

Clients use it unchanged: `cloudflare.Cloudflare(api_token=h.token, base_url=h.url)`.
`python -m fatctl.sandbox.cloudflare` runs it as a process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fatctl.sandbox.apiemu.admin import ADMIN_PREFIX
from fatctl.sandbox.apiemu.faults import FaultConfig
from fatctl.sandbox.apiemu.handle import BaseHandle

__all__ = ["CloudflareHandle", "start_cloudflare_emulator"]


@dataclass
class CloudflareHandle(BaseHandle):
    """A running emulator. `url` ends in /client/v4."""

    account_id: str = ""

    def zone_id(self, name: str) -> str:
        for zone in self._emulator.store.all("zone"):
            if zone["name"] == name:
                return str(zone["id"])
        raise KeyError(f"no zone {name!r} in the emulator")

    def records(self) -> list[dict[str, Any]]:
        """Every DNS record the emulator holds (for leak checks in tests)."""
        return list(self.inventory()["dns_records"])

    def stop(self) -> None:
        self._close()


def start_cloudflare_emulator(
    state_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    zones: tuple[str, ...] = ("sandbox.test",),
    account_id: str | None = None,
    token: str | None = None,
    faults: FaultConfig | dict[str, Any] | None = None,
    rate_limit: int = 1200,
    zone_plans: Mapping[str, str] | None = None,
    block_seconds: float | None = None,
) -> CloudflareHandle:
    """`account_id` and `token` default to values generated once per state dir. `zone_plans`
    maps a zone to its plan (free, pro, business, enterprise; Free when not named), whose DNS
    limits the emulator enforces. Past `rate_limit` requests in five minutes every call is
    refused for `block_seconds` (five minutes unless told: tests make it short)."""
    from fatctl.sandbox.apiemu.runner import ServerThread
    from fatctl.sandbox.cloudflare.app import build

    if isinstance(faults, dict):
        faults = FaultConfig().updated(faults)
    emulator = build(Path(state_dir), tuple(zones), account_id, token, faults, rate_limit,
                     zone_plans, block_seconds)  # fmt: skip
    try:
        server = ServerThread(emulator.asgi, host, port).start()
    except BaseException:
        emulator.store.close()  # release the state dir for the next attempt
        raise
    base = f"http://{host}:{server.port}"
    return CloudflareHandle(
        url=f"{base}/client/v4",
        token=emulator.token,
        admin_url=f"{base}{ADMIN_PREFIX}",
        account_id=emulator.account_id,
        state_dir=Path(state_dir),
        _emulator=emulator,
        _server=server,
    )
