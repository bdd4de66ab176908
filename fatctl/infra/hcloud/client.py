"""The hcloud SDK at the edge: building a client from `Settings`, mapping its errors to
`CloudError`, and running calls under fatctl's retry policy and rate budget.

One of the few modules allowed to import `hcloud` (with the other modules of `infra/hcloud`).
The SDK does not expose response headers, so a `requests` response hook on its session feeds
the `RateBudget`; the SDK's own retry loop is switched off so ours (tenacity, injectable
timing) is the only one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from hcloud import APIException, Client, HCloudException
from requests.adapters import HTTPAdapter

from fatctl.calllog import api_call
from fatctl.config import Settings
from fatctl.errors import CloudError, ConfigError
from fatctl.infra.selector import Selector
from fatctl.pacing.retry import (
    HETZNER_RETRY_CODES,
    RETRY_STATUSES,
    RateBudget,
    Transient,
    budget_for,
    call_with_retry,
)
from fatctl.pacing.timing import Timing

T = TypeVar("T")


def project_tag(settings: Settings) -> str:
    """A short digest naming the Hetzner project (endpoint + token) for ids stored in the
    database: one-way, so the token itself is never written anywhere."""
    token = settings.hcloud_token.reveal() if settings.hcloud_token else ""
    material = f"{settings.hcloud_endpoint}\n{token}".encode()
    return hashlib.sha256(material).hexdigest()[:16]


def project_budget(settings: Settings) -> RateBudget:
    """The budget of the project these settings talk to: Hetzner meters each project on its
    own (3600 requests an hour each), so each named project has its own tracker."""
    name = settings.hcloud_project
    budget = budget_for(f"hetzner:{name}" if name else "hetzner")
    if name and (reserve := settings.project(name).reserve) is not None:
        budget.reserve = reserve
    return budget


class PacedAdapter(HTTPAdapter):
    """Every HTTP request the SDK sends (action polls and pages included) waits for its slot
    in the rate budget first, and is recorded for `-v` and `--log-file` (token masked)."""

    def __init__(self, budget: RateBudget, sleep: Callable[[float], None]) -> None:
        super().__init__()
        self.budget, self.sleep = budget, sleep

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        self.budget.pace(self.sleep)
        try:
            with api_call(request.method, request.url, request.headers) as call:
                response = super().send(request, *args, **kwargs)
                call.outcome = response.status_code
            return response
        finally:
            self.budget.landed()  # before the response hook lets the budget observe it


def make_client(
    settings: Settings,
    timing: Timing,
    budget: RateBudget,
    sleep: Callable[[float], None] = time.sleep,
) -> Client:
    token = settings.hcloud_token
    if not token:
        raise ConfigError("missing setting hcloud_token: set HCLOUD_TOKEN or 'hcloud.token'")
    client = Client(
        token=token.reveal(),
        api_endpoint=settings.hcloud_endpoint,
        application_name="fatctl",
        poll_interval=timing.poll_interval,
        poll_max_retries=timing.poll_max_retries,
        timeout=30.0,
    )
    inner = client._client  # the SDK keeps its session and retry knobs on this object
    inner._retry_max_retries = 0

    def observe(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        budget.observe(response.status_code, response.headers)

    inner._session.hooks["response"].append(observe)
    adapter = PacedAdapter(budget, sleep)
    inner._session.mount("http://", adapter)
    inner._session.mount("https://", adapter)
    return client


def classify(budget: RateBudget) -> Callable[[BaseException], Transient | None]:
    """Which hcloud failures are worth retrying, carrying the server's wait hint."""

    def inner(exc: BaseException) -> Transient | None:
        if isinstance(exc, APIException):
            code = exc.code
            if (isinstance(code, str) and code in HETZNER_RETRY_CODES) or (
                isinstance(code, int) and code in RETRY_STATUSES
            ):
                return Transient(str(code), str(exc.message), budget.last_wait_hint)
            return None
        if isinstance(exc, requests.ConnectionError | requests.Timeout):
            return Transient("connection", type(exc).__name__)
        return None

    return inner


def to_cloud_error(exc: BaseException, doing: str) -> CloudError:
    """One line naming what we were doing and Hetzner's error code; never the token."""
    if isinstance(exc, Transient):
        return CloudError(
            f"Hetzner API: {doing}: {exc.message} (gave up after retries)", code=exc.code
        )
    if isinstance(exc, APIException):
        return CloudError(f"Hetzner API: {doing}: {exc.message}", code=str(exc.code))
    if isinstance(exc, HCloudException):
        return CloudError(f"Hetzner action failed: {doing}: {exc}", code="action_failed")
    if isinstance(exc, requests.RequestException):
        return CloudError(
            f"Hetzner API unreachable: {doing}: {type(exc).__name__}", code="connection"
        )
    return CloudError(f"Hetzner API: {doing}: {type(exc).__name__}", code="unknown")


class Hcloud:
    """A client plus the retry/pace wrapper every engine call goes through."""

    def __init__(
        self,
        settings: Settings,
        timing: Timing | None = None,
        *,
        budget: RateBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        timing = timing or Timing.of(settings)  # the operator's, unless a test injects its own
        self.timing = timing
        # Which project this client talks to (for per-process caches; the token stays wrapped).
        self.project: tuple[str, object] = (settings.hcloud_endpoint, settings.hcloud_token)
        self.project_tag = project_tag(settings)
        self.budget = budget or project_budget(settings)
        self.sleep = sleep
        self.client = make_client(settings, timing, self.budget, sleep)
        self._classify = classify(self.budget)

    def call(
        self, doing: str, fn: Callable[[], T], recover: Callable[[], T | None] | None = None
    ) -> T:
        """Run one SDK call with retries (each request paced by the budget); failures become
        one-line CloudErrors. Creates pass `recover` (see `call_with_retry`)."""
        try:
            return call_with_retry(fn, timing=self.timing, classify=self._classify,
                                   sleep=self.sleep, recover=recover)  # fmt: skip
        except (Transient, HCloudException, requests.RequestException) as exc:
            raise to_cloud_error(exc, doing) from None

    def listed(
        self, doing: str, get_all: Callable[..., list[Any]], selector: Selector
    ) -> list[Any]:
        """`get_all` by label selector, keeping only what really carries those labels (an
        answer that ignored the selector must not hand fatctl somebody else's resources)."""
        return selector.kept(self.call(doing, lambda: get_all(label_selector=str(selector))))

    def wait(self, doing: str, action: Any) -> None:
        """Wait for an action (or a response carrying `.action`) to finish."""
        found = getattr(action, "action", action)
        if found is None:
            return
        if getattr(found, "status", None) == "running" and self.timing.poll_interval:
            # Just started, so still running: the SDK's first poll would only say so.
            self.sleep(self.timing.poll_interval)
        self.call(doing, found.wait_until_finished)
