"""The Cloudflare SDK at the edge: a client from `Settings` whose HTTP responses feed the rate
budget, and calls run under fatctl's retry policy with SDK errors mapped to `CloudError`.

With cloudflare_dns.py and r2_credentials.py, the only modules importing `cloudflare`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import cloudflare
import httpx

from fatctl.calllog import api_call
from fatctl.config import Settings
from fatctl.errors import CloudError, ConfigError
from fatctl.pacing.budget import retry_hint
from fatctl.pacing.retry import RateBudget, Transient, budget_for, call_with_retry
from fatctl.pacing.timing import Timing

T = TypeVar("T")


class PacedTransport(httpx.BaseTransport):
    """Every request (pages included) waits for its slot in the rate budget first, and is
    recorded for `-v` and `--log-file` (token masked)."""

    def __init__(self, budget: RateBudget, sleep: Callable[[float], None]) -> None:
        self.budget, self.sleep = budget, sleep
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.budget.pace(self.sleep)
        try:
            with api_call(request.method, str(request.url), request.headers) as call:
                response = self.inner.handle_request(request)
                call.outcome = response.status_code
            return response
        finally:
            self.budget.landed()  # before the response hook lets the budget observe it

    def close(self) -> None:
        self.inner.close()


def make_client(
    settings: Settings, budget: RateBudget, sleep: Callable[[float], None] = time.sleep
) -> cloudflare.Cloudflare:
    token = settings.cloudflare_api_token
    if not token:
        raise ConfigError("missing setting cloudflare_api_token: set CLOUDFLARE_API_TOKEN")

    def observe(response: httpx.Response) -> None:
        budget.observe(response.status_code, response.headers)

    http = httpx.Client(
        transport=PacedTransport(budget, sleep), event_hooks={"response": [observe]}, timeout=30.0
    )
    # max_retries=0: one retry policy (ours, with injectable timing), not two stacked.
    return cloudflare.Cloudflare(
        api_token=token.reveal(),
        base_url=settings.cloudflare_base_url,
        max_retries=0,
        http_client=http,
    )


def classify(exc: BaseException) -> Transient | None:
    if isinstance(exc, cloudflare.APIStatusError):
        status = exc.status_code
        if status == 429 or status >= 500:
            return Transient(
                str(status), _message(exc), retry_hint(status, exc.response.headers, time.time())
            )
        return None
    if isinstance(exc, cloudflare.APIConnectionError):
        return Transient("connection", type(exc).__name__)
    return None


def _message(exc: cloudflare.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = body.get("errors") or []
    if errors and isinstance(errors[0], dict):
        # A wrapper such as 1004 "DNS Validation Error" names its cause in `error_chain`.
        chain = errors[0].get("error_chain") or []
        error = chain[0] if chain and isinstance(chain[0], dict) else errors[0]
        return f"{error.get('message', '')} ({error.get('code', '')})"
    return f"HTTP {exc.status_code}"


class Cf:
    """A client plus retry/pace; every call names what it was doing for the error line."""

    def __init__(
        self,
        settings: Settings,
        timing: Timing | None = None,
        *,
        budget: RateBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.timing = timing or Timing.of(settings)
        self.budget = budget or budget_for("cloudflare")
        self.sleep = sleep
        self.client = make_client(settings, self.budget, sleep)

    def call(
        self, doing: str, fn: Callable[[], T], recover: Callable[[], T | None] | None = None
    ) -> T:
        """One SDK call with retries; creates pass `recover` (see `call_with_retry`)."""
        try:
            return call_with_retry(fn, timing=self.timing, classify=classify, sleep=self.sleep,
                                   recover=recover)  # fmt: skip
        except Transient as exc:
            raise CloudError(
                f"Cloudflare API: {doing}: {exc.message} (gave up after retries)", code=exc.code
            ) from None
        except cloudflare.APIStatusError as exc:
            raise CloudError(
                f"Cloudflare API: {doing}: {_message(exc)}", code=str(exc.status_code)
            ) from None
        except cloudflare.APIError as exc:
            raise CloudError(f"Cloudflare API: {doing}: {type(exc).__name__}", code="api") from None
