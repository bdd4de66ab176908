"""The sandbox's Hetzner Cloud API emulator: `start_emulator` serves it with uvicorn on a
background thread; `python -m fatctl.sandbox.hetzner` runs it as a process.

Clients use it unchanged: `hcloud.Client(token=h.token, api_endpoint=h.url)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fatctl.sandbox.apiemu.admin import ADMIN_PREFIX
from fatctl.sandbox.apiemu.faults import FaultConfig
from fatctl.sandbox.apiemu.handle import BaseHandle
from fatctl.sandbox.driver import BoxDriver

__all__ = ["EmulatorHandle", "FaultConfig", "start_emulator"]


class EmulatorHandle(BaseHandle):
    """A running emulator. `url` ends in /v1; `admin_url` is the knob and stats endpoint."""

    def stop(self) -> None:
        self._emulator.runner.stop()
        self._close()


def start_emulator(
    state_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    driver: BoxDriver | None = None,
    faults: FaultConfig | dict[str, Any] | None = None,
    rate_limit: int = 3600,
    action_delay: float = 0.0,
    token: str | None = None,
) -> EmulatorHandle:
    from fatctl.sandbox.apiemu.runner import ServerThread
    from fatctl.sandbox.hetzner.app import build

    if isinstance(faults, dict):
        faults = FaultConfig().updated(faults)
    emulator = build(Path(state_dir), token, driver, faults, rate_limit, action_delay)
    try:
        server = ServerThread(emulator.asgi, host, port).start()
    except BaseException:
        emulator.runner.stop()
        emulator.store.close()  # release the state dir for the next attempt
        raise
    base = f"http://{host}:{server.port}"
    return EmulatorHandle(
        url=f"{base}/v1",
        token=emulator.token,
        admin_url=f"{base}{ADMIN_PREFIX}",
        state_dir=Path(state_dir),
        _emulator=emulator,
        _server=server,
    )
