"""R2 credentials scoped to one agent's prefix (`agents/<id>/`), from Cloudflare's R2
temporary-credentials API.

R2 API tokens scope to whole buckets; per-prefix access needs temporary credentials derived
from a bucket token (its access key id is `r2_parent_access_key_id`). They live at most 7
days, so each carries its expiry and `needs_rotation` says when to refresh it on the box.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fatctl.clock import Clock, wall_clock
from fatctl.config import Settings
from fatctl.dns.cf_client import Cf
from fatctl.errors import BadInput, CloudError, ConfigError
from fatctl.pacing.retry import RateBudget
from fatctl.pacing.timing import Timing
from fatctl.sensitive import Sensitive

MAX_TTL = timedelta(days=7)
ROTATE_BEFORE = timedelta(days=2)


@dataclass(frozen=True)
class R2Credentials:
    """What an agent's box needs to mount its prefix; the secret parts never print."""

    access_key_id: str
    secret_access_key: Sensitive
    session_token: Sensitive
    bucket: str
    prefix: str
    expires_at: datetime


def agent_prefix(agent_id: str) -> str:
    if not agent_id or "/" in agent_id or agent_id in (".", ".."):
        raise BadInput(f"agent id {agent_id!r} cannot name an R2 prefix")
    return f"agents/{agent_id}/"


def needs_rotation(expires_at: datetime, now: datetime, margin: timedelta = ROTATE_BEFORE) -> bool:
    """True when the credentials expire within `margin` (or already have)."""
    return expires_at - now <= margin


def r2_settings(settings: Settings) -> tuple[str, str]:
    """(account id, parent access key id) that credentials are issued with, or one clear error
    (flows that will issue some ask early, before they write anything)."""
    account = settings.require("cloudflare_account_id")
    parent = settings.r2_parent_access_key_id
    if not parent:
        raise ConfigError(
            "missing setting r2_parent_access_key_id: set FATCTL_R2_PARENT_ACCESS_KEY_ID "
            "(the access key id of the bucket's R2 API token)"
        )
    return str(account), parent


def _checked(settings: Settings, agent_id: str, ttl: timedelta) -> tuple[str, str, str]:
    """(account id, parent access key id, prefix), or one clear error before any API call."""
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise BadInput("R2 temporary credentials live between 1 second and 7 days")
    return (*r2_settings(settings), agent_prefix(agent_id))


def issue_r2_credentials(
    settings: Settings,
    agent_id: str,
    *,
    ttl: timedelta = MAX_TTL,
    timing: Timing | None = None,
    budget: RateBudget | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = wall_clock,
) -> R2Credentials:
    """Read/write object credentials for the agent's prefix only, valid for `ttl` (<= 7 days).

    The expiry is stamped from `clock`, read before the request: the caller's clock, so the
    freshness it later checks against and the expiry it stored come from one time line.
    """
    account, parent, prefix = _checked(settings, agent_id, ttl)
    cf = Cf(settings, timing, budget=budget, sleep=sleep)
    issued_at = clock()
    response = cf.call(
        f"issue R2 credentials for {prefix}",
        lambda: cf.client.r2.temporary_credentials.create(
            account_id=account,
            bucket=settings.r2_bucket,
            parent_access_key_id=parent,
            permission="object-read-write",
            ttl_seconds=int(ttl.total_seconds()),
            prefixes=[prefix],
        ),
    )
    if not (
        response
        and response.access_key_id
        and response.secret_access_key
        and response.session_token
    ):
        raise CloudError("Cloudflare API: R2 temporary credentials came back incomplete", code="r2")
    return R2Credentials(
        access_key_id=response.access_key_id,
        secret_access_key=Sensitive(response.secret_access_key),
        session_token=Sensitive(response.session_token),
        bucket=settings.r2_bucket,
        prefix=prefix,
        expires_at=issued_at + ttl,
    )
