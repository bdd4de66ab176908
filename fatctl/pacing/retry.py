"""Retry policies (tenacity) and the API rate budget, shared by the Hetzner and Cloudflare code.

SDK modules classify their own errors into `Transient` (retry) or a `CloudError` (give up);
this module only decides how long to wait: the server's `Retry-After`/`RateLimit-Reset` when it
sent one, else capped exponential backoff. The rate budget (`RateBudget`, in `pacing.budget`)
slows callers down before the budget runs out (Hetzner: 3600 requests/hour).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from fatctl.pacing.budget import (  # noqa: F401 - the budget's names, re-exported
    RETRY_STATUSES,
    BudgetView,
    RateBudget,
    budget_for,
    budget_view,
    header,
    server_wait,
)
from fatctl.pacing.timing import Timing

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


# Failures after which the request may have been carried out: the connection died or a
# gateway answered. A create retried blindly after one of these can make a duplicate.
AMBIGUOUS_CODES = frozenset(
    {"connection", "500", "502", "503", "504", "timeout", "bad_gateway", "server_error",
     "service_error", "unavailable"}
)  # fmt: skip


class Transient(Exception):
    """A failure worth retrying; `wait_hint` is what the server asked us to wait, if anything."""

    def __init__(self, code: str, message: str, wait_hint: float | None = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.wait_hint = wait_hint

    @property
    def ambiguous(self) -> bool:
        """Whether the server may have done the work (as opposed to refusing it: 429, locked)."""
        return self.code in AMBIGUOUS_CODES


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
    recover: Callable[[], T | None] | None = None,
) -> T:
    """Run `fn`; retry while `classify` says the failure is transient; re-raise the last one.

    `recover` is for calls that are not idempotent (creates): once an attempt failed
    ambiguously, every later attempt first asks `recover` for what the lost call may have
    made, and returns that instead of doing the work a second time."""
    doubt = False

    def attempt() -> T:
        nonlocal doubt
        try:
            if doubt and recover is not None:
                found = recover()
                if found is not None:
                    return found
            return fn()
        except Transient:
            raise
        except Exception as exc:
            transient = classify(exc)
            if transient is None:
                raise
            doubt = doubt or transient.ambiguous
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
