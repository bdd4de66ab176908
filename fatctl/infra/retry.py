"""Retry policies (tenacity) and the API rate budget, shared by the Hetzner and Cloudflare code.

SDK modules classify their own errors into `Transient` (retry) or a `CloudError` (give up);
this module only decides how long to wait: the server's `Retry-After`/`RateLimit-Reset` when it
sent one, else capped exponential backoff. `RateBudget` watches the `RateLimit-*` headers of
every response and slows callers down before the budget runs out (Hetzner: 3600 requests/hour).
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from fatctl.infra.engine import Timing

T = TypeVar("T")

# Hetzner's error codes for "not done, try again": limits, locks, and its 5xx family.
HETZNER_RETRY_CODES = frozenset(
    {
        "rate_limit_exceeded",
        "conflict",
        "locked",
        "timeout",
        "bad_gateway",
        "server_error",
        "service_error",
        "unavailable",
    }
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Transient(Exception):
    """A failure worth retrying; `wait_hint` is what the server asked us to wait, if anything."""

    def __init__(self, code: str, message: str, wait_hint: float | None = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.wait_hint = wait_hint


def header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower())


def server_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait: Retry-After (seconds or HTTP date), else
    RateLimit-Reset (Hetzner sends a UNIX time; the IETF draft sends seconds)."""
    if (raw := header(headers, "Retry-After")) is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - now)
            except (TypeError, ValueError):
                return None
    if (raw := header(headers, "RateLimit-Reset")) is not None:
        try:
            value = float(raw)
        except ValueError:
            return None
        return max(0.0, value - now) if value > 1e9 else max(0.0, value)
    return None


def backoff(timing: Timing, attempt: int, hint: float | None) -> float:
    """The wait before retry `attempt` (1-based): the server's hint wins, capped at retry_cap."""
    if hint is not None:
        return min(hint, timing.retry_cap) if timing.retry_cap else 0.0
    return min(timing.retry_base * 2 ** (attempt - 1), timing.retry_cap)


def call_with_retry(
    fn: Callable[[], T],
    *,
    timing: Timing,
    classify: Callable[[BaseException], Transient | None],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `fn`; retry while `classify` says the failure is transient; re-raise the last one."""

    def attempt() -> T:
        try:
            return fn()
        except Transient:
            raise
        except Exception as exc:
            transient = classify(exc)
            if transient is None:
                raise
            raise transient from exc

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = exc.wait_hint if isinstance(exc, Transient) else None
        return backoff(timing, state.attempt_number, hint)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Transient),
        stop=tenacity.stop_after_attempt(max(1, timing.retry_attempts)),
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)


@dataclass(frozen=True)
class BudgetView:
    """A snapshot for `fatctl status --api`."""

    api: str
    limit: int | None
    remaining: int | None
    reset_in_s: float | None
    requests_seen: int
    throttled_s: float

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class RateBudget:
    """Tracks the RateLimit headers of one API and paces callers near exhaustion.

    Below `reserve` (a fraction of the limit) calls are spread evenly over the time left until
    the reset, so a fleet-wide run degrades into a slower run instead of a wall of 429s.
    """

    def __init__(self, api: str, *, reserve: float = 0.05, clock: Callable[[], float] = time.time):
        self.api = api
        self.reserve = reserve
        self.clock = clock
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.last_wait_hint: float | None = None
        self.requests_seen = 0
        self.throttled_s = 0.0

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        now = self.clock()
        with self._lock:
            self.requests_seen += 1
            limit, remaining = (
                header(headers, "RateLimit-Limit"),
                header(headers, "RateLimit-Remaining"),
            )
            if limit is not None and limit.isdigit():
                self.limit = int(limit)
            if remaining is not None and remaining.isdigit():
                self.remaining = int(remaining)
            reset = server_wait({"RateLimit-Reset": header(headers, "RateLimit-Reset") or ""}, now)
            if reset is not None and header(headers, "RateLimit-Reset"):
                self.reset_at = now + reset
            self.last_wait_hint = server_wait(headers, now) if status in RETRY_STATUSES else None

    def delay(self) -> float:
        """How long the next call should wait to stay within the budget (0 when plenty is left)."""
        with self._lock:
            if self.limit is None or self.remaining is None or self.reset_at is None:
                return 0.0
            if self.remaining > self.limit * self.reserve:
                return 0.0
            left = max(0.0, self.reset_at - self.clock())
            return left / max(1, self.remaining)

    def pace(self, sleep: Callable[[float], None] = time.sleep) -> None:
        wait = self.delay()
        if wait > 0:
            with self._lock:
                self.throttled_s += wait
            sleep(wait)

    def view(self) -> BudgetView:
        with self._lock:
            reset_in = None if self.reset_at is None else max(0.0, self.reset_at - self.clock())
            return BudgetView(
                self.api, self.limit, self.remaining, reset_in, self.requests_seen, self.throttled_s
            )


_BUDGETS: dict[str, RateBudget] = {}


def budget_for(api: str) -> RateBudget:
    """One tracker per API per process, so `budget_view()` sees what every client observed."""
    return _BUDGETS.setdefault(api, RateBudget(api))


def budget_view() -> list[dict[str, object]]:
    """Every API budget this process has observed, for `fatctl status --api`."""
    return [b.view().as_dict() for b in _BUDGETS.values()]
