"""Fault injection knobs and the per-request decision. Pure apart from the random source, which
is seedable so a reliability run can be replayed."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

_SERVER_ERRORS = (500, 502, 503, 504)
_NO_ROOM = frozenset({"resource_unavailable", "placement_error"})


@dataclass(frozen=True)
class FaultConfig:
    """What to break. Rates are probabilities per API request (admin calls are never faulted).

    error_rate: answer a 5xx (picked from `error_statuses`) without doing the work.
    drop_rate: close the connection without any response, before doing the work.
    drop_response_rate: do the work, then close the connection (the client never learns that
        its call succeeded: the case that makes duplicate resources).
    rate_limit_burst: answer the next N requests with 429 + Retry-After (counts down).
    retry_after: the Retry-After seconds sent with burst 429s.
    locked_rate / conflict_rate: answer mutating requests with `locked` (423) / `conflict` (409).
    action_delay: seconds an asynchronous action stays `running` (None: the emulator default).
    action_delays: per action command, e.g. {"create_server": 20.0}; wins over action_delay.
    action_error_rate: asynchronous actions that finish in `error`.
    hold_match: a regex searched in "METHOD /path" of mutating requests ("" = off); the
        `hold_nth` match is applied, then its answer is held back for up to `hold_seconds`
        (or until the client goes away) and the connection closed. `hold_marker`, a file
        path, is touched once the work is done: a crash harness kills the client then, the
        moment a side effect has happened but its caller has not learnt of it.
    sold_out: Hetzner only: "type@location" ("*" for any type or location) -> the error a
        server create there answers, `resource_unavailable` or `placement_error`, as a cloud
        with no capacity left for that type or location does.
    """

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = _SERVER_ERRORS
    drop_rate: float = 0.0
    drop_response_rate: float = 0.0
    rate_limit_burst: int = 0
    retry_after: int = 1
    locked_rate: float = 0.0
    conflict_rate: float = 0.0
    action_delay: float | None = None
    action_delays: dict[str, float] = field(default_factory=dict)
    action_error_rate: float = 0.0
    seed: int | None = field(default=None)
    hold_match: str = ""
    hold_nth: int = 1
    hold_seconds: float = 30.0
    hold_marker: str = ""
    sold_out: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate", "drop_response_rate", "locked_rate"):
            _check_rate(name, getattr(self, name))
        _check_rate("conflict_rate", self.conflict_rate)
        _check_rate("action_error_rate", self.action_error_rate)
        if any(s not in _SERVER_ERRORS for s in self.error_statuses) or not self.error_statuses:
            raise ValueError(f"error_statuses must be a non-empty subset of {_SERVER_ERRORS}")
        if self.rate_limit_burst < 0 or self.retry_after < 0:
            raise ValueError("rate_limit_burst and retry_after must be >= 0")
        if self.action_delay is not None and self.action_delay < 0:
            raise ValueError("action_delay must be >= 0")
        if not isinstance(self.action_delays, dict) or any(
            not isinstance(v, int | float) or v < 0 for v in self.action_delays.values()
        ):
            raise ValueError("action_delays must map action commands to seconds >= 0")
        _check_hold(self)
        if not isinstance(self.sold_out, dict) or not set(self.sold_out.values()) <= _NO_ROOM:
            raise ValueError(f"sold_out must map type@location to one of {sorted(_NO_ROOM)}")

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with `changes` applied; unknown knobs are refused (ValueError)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}")
        if "error_statuses" in changes:
            statuses = tuple(int(s) for s in changes["error_statuses"])
            changes = {**changes, "error_statuses": statuses}
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_statuses"] = list(self.error_statuses)
        return data


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


def _check_hold(cfg: FaultConfig) -> None:
    if cfg.hold_nth < 1 or cfg.hold_seconds < 0:
        raise ValueError("hold_nth must be >= 1 and hold_seconds >= 0")
    try:
        re.compile(cfg.hold_match)
    except re.error as exc:
        raise ValueError(f"hold_match is not a regex: {exc}") from None


class Fault(Enum):
    NONE = "none"
    RATE_LIMIT = "rate_limit"
    DROP = "drop"
    DROP_RESPONSE = "drop_response"
    SERVER_ERROR = "server_error"
    LOCKED = "locked"
    CONFLICT = "conflict"


class FaultState:
    """The live knobs plus the burst counter; `decide` is called once per API request."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.config = config or FaultConfig()
        self._burst_left = self.config.rate_limit_burst
        self._rng = random.Random(self.config.seed)
        self._hold_seen = 0

    def set(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._burst_left = config.rate_limit_burst
            self._hold_seen = 0
            if config.seed is not None:
                self._rng = random.Random(config.seed)

    def update(self, changes: dict[str, Any]) -> FaultConfig:
        """Apply some knobs; a 429 burst is armed again only when `rate_limit_burst` is among
        them (so turning another knob does not replay an old burst)."""
        with self._lock:
            config = self.config.updated(changes)
            self.config = config
            if "rate_limit_burst" in changes:
                self._burst_left = config.rate_limit_burst
            if any(k.startswith("hold_") for k in changes):
                self._hold_seen = 0  # a new hold counts its matches afresh
            if "seed" in changes and config.seed is not None:
                self._rng = random.Random(config.seed)
            return config

    def decide(self, mutating: bool) -> tuple[Fault, int]:
        """The fault for this request and, for SERVER_ERROR, the status to send."""
        with self._lock:
            cfg = self.config
            if self._burst_left > 0:
                self._burst_left -= 1
                return Fault.RATE_LIMIT, 429
            roll = self._rng.random
            if roll() < cfg.drop_rate:
                return Fault.DROP, 0
            if roll() < cfg.error_rate:
                return Fault.SERVER_ERROR, self._rng.choice(cfg.error_statuses)
            if mutating and roll() < cfg.locked_rate:
                return Fault.LOCKED, 423
            if mutating and roll() < cfg.conflict_rate:
                return Fault.CONFLICT, 409
            if roll() < cfg.drop_response_rate:
                return Fault.DROP_RESPONSE, 0
            return Fault.NONE, 0

    def action_fails(self) -> bool:
        with self._lock:
            return self._rng.random() < self.config.action_error_rate

    def hold_now(self, method: str, path: str, mutating: bool) -> bool:
        """Whether this request is the one to hold (the `hold_nth` mutating match)."""
        with self._lock:
            cfg = self.config
            if not (cfg.hold_match and mutating and re.search(cfg.hold_match, f"{method} {path}")):
                return False
            self._hold_seen += 1
            return self._hold_seen == cfg.hold_nth

    def mark_held(self) -> None:
        """Touch `hold_marker`: the held request's work is done, its answer not yet sent."""
        marker = self.config.hold_marker
        if marker:
            Path(marker).write_text("held\n")
