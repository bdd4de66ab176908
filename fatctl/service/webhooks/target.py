"""Where events go and what signs them: the `FATCTL_WEBHOOK_URL` setting and the signing
secret, sealed in fatctl's secret store like every other secret (never in the environment,
argv, output or a log).

The platform learns the secret once: `fatctl webhooks secret rotate --out FILE` writes a fresh
one to a new 0600 file for the operator to hand over (then delete), or the platform generates
it and the operator pipes it to `fatctl webhooks secret set`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets as pysecrets
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session

from fatctl.config import Settings
from fatctl.errors import ConfigError, NotFound
from fatctl.secrets import KeyRing
from fatctl.sensitive import Sensitive
from fatctl.state import secret_store
from fatctl.state.db import session_scope

SIGNING_SECRET = "webhook-signing-secret"  # noqa: S105 (a record name, not a value)
SECRET_PREFIX = "whsec_"  # noqa: S105 (what a secret starts with, as Stripe's do)
MIN_SECRET_CHARS = 32


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_url(raw: str) -> str:
    """The webhook URL if it is https, or http to a loopback address (a receiver on the same
    machine); anything else is a one-line configuration error."""
    parts = urlsplit(raw)
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http"):
        raise ConfigError("FATCTL_WEBHOOK_URL must be an https:// URL with a host")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError("FATCTL_WEBHOOK_URL must be https (plain http only to a loopback host)")
    if parts.username or parts.password:
        raise ConfigError(
            "FATCTL_WEBHOOK_URL must not carry credentials (the signature authenticates)"
        )
    return raw


def webhook_url(settings: Settings) -> str | None:
    """The checked URL, or None when no webhook is configured (events are then not recorded)."""
    return checked_url(settings.webhook_url) if settings.webhook_url else None


def new_secret() -> Sensitive:
    return Sensitive(SECRET_PREFIX + pysecrets.token_urlsafe(32))


def fingerprint(secret: Sensitive) -> str:
    """Enough to tell two secrets apart in a listing, nothing to guess one from."""
    return hashlib.sha256(b"fatctl-webhook|" + secret.reveal().encode()).hexdigest()[:12]


def store_secret(session: Session, ring: KeyRing, secret: Sensitive) -> str:
    if len(secret.reveal()) < MIN_SECRET_CHARS:
        raise ConfigError(f"a webhook signing secret needs at least {MIN_SECRET_CHARS} characters")
    secret_store.put(session, ring, agent_pk=None, name=SIGNING_SECRET, value=secret)
    return fingerprint(secret)


def signing_secret(session: Session, ring: KeyRing) -> Sensitive:
    try:
        return secret_store.get(session, ring, agent_pk=None, name=SIGNING_SECRET)
    except NotFound:
        raise ConfigError(
            "FATCTL_WEBHOOK_URL is set but no webhook signing secret is stored",
            hint="run `fatctl webhooks secret rotate --out FILE` (or `secret set` from stdin)",
        ) from None


def check_ready(db: Engine, ring: KeyRing, settings: Settings) -> None:
    """Refuse (one line, exit 2) a malformed URL, or a URL with no signing secret to sign with:
    `fatctl serve` checks before it listens, so events never pile up as dead letters for a
    setting the operator can fix now."""
    if webhook_url(settings) is None:
        return
    with session_scope(db) as session:
        signing_secret(session, ring)
