"""How API calls retry and how SDK actions are polled: one value, from the settings or instant.

Shared by the Hetzner and Cloudflare code (and the flows that build their clients), so it
lives below both; tests use `Timing.instant()` so nothing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fatctl.errors import ConfigError

if TYPE_CHECKING:
    from fatctl.config import Settings


@dataclass(frozen=True)
class Timing:
    """Polling and retry pacing; tests use `Timing.instant()` so nothing sleeps."""

    poll_interval: float = 1.0
    poll_max_retries: int = 600
    retry_base: float = 1.0
    retry_cap: float = 60.0
    retry_attempts: int = 6

    @classmethod
    def from_settings(cls, api_retries: str, poll_interval: str) -> Timing:
        """From the `api_retries` / `poll_interval` settings; bad values are one clear error."""
        try:
            attempts, poll = int(api_retries), float(poll_interval)
        except ValueError:
            raise ConfigError("api_retries must be an integer and poll_interval a number") from None
        if attempts < 1 or poll < 0:
            raise ConfigError("api_retries must be >= 1 and poll_interval >= 0")
        return cls(poll_interval=poll, retry_attempts=attempts)

    @classmethod
    def of(cls, settings: Settings) -> Timing:
        """The operator's configured timing (every client built from settings uses this)."""
        return cls.from_settings(settings.api_retries, settings.poll_interval)

    @classmethod
    def instant(cls) -> Timing:
        return cls(poll_interval=0.0, poll_max_retries=100_000, retry_base=0.0, retry_cap=0.0)
