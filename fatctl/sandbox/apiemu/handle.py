"""What every running emulator offers its starter: URLs, token, fault knobs, stats, stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fatctl.sandbox.apiemu.admin import stats_with_budget
from fatctl.sandbox.apiemu.faults import FaultConfig


@dataclass
class BaseHandle:
    url: str
    token: str
    admin_url: str
    state_dir: Path
    _emulator: Any = field(repr=False)
    _server: Any = field(repr=False)

    def set_faults(self, **knobs: Any) -> FaultConfig:
        """Change fault knobs at runtime (see FaultConfig); unknown knobs raise ValueError."""
        return self._emulator.faults.update(knobs)

    def set_rate_limit(self, capacity: int, window_seconds: float) -> None:
        """Replace the API's rate budget (a full bucket of `capacity`, refilled over the window)."""
        self._emulator.bucket.reconfigure(capacity, window_seconds)

    def clear_faults(self) -> None:
        self._emulator.faults.set(FaultConfig())

    def stats(self) -> dict[str, Any]:
        """Calls per endpoint, statuses, injected faults, 429s and the rate budget left."""
        return stats_with_budget(self._emulator.stats, self._emulator.bucket)

    def inventory(self) -> dict[str, Any]:
        """What the emulated cloud holds, by kind, without touching the API (leak checks)."""
        return self._emulator.inventory()

    def reset_stats(self) -> None:
        self._emulator.stats.reset()

    def _close(self) -> None:
        self._server.stop()
        self._emulator.store.close()
