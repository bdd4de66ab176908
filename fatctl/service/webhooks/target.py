"""Where events go and what signs them: the `FATCTL_WEBHOOK_URL` setting and the signing
secret, sealed in fatctl's secret store like every other secret (never in the environment,
argv, output or a log).

The platform learns the secret once: `fatctl webhooks secret rotate --out FILE` writes a fresh
one to a new 0600 file for the operator to hand over (then delete), or the platform generates
it and the operator pipes it to `fatctl webhooks secret set`.

A new secret does not cut the old one off: the replaced secret is kept sealed, with an expiry
`FATCTL_WEBHOOK_SECRET_OVERLAP_H` (24 h) ahead, and deliveries are signed with both (two `v1=`)
until then. Deliveries made while the platform installs the new secret verify against the old
one instead of failing, being retried and dead-lettered.
"""

from __future__ import annotations

import hashlib
import secrets as pysecrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session

from fatctl.config import Settings
from fatctl.errors import ConfigError, NotFound
from fatctl.secrets import KeyRing
from fatctl.sensitive import Sensitive
from fatctl.state import secret_store
from fatctl.state.db import session_scope
from fatctl.validation import is_loopback_host

SIGNING_SECRET = "webhook-signing-secret"  # noqa: S105 (a record name, not a value)
PREVIOUS_SECRET = "webhook-signing-secret-previous"  # noqa: S105 (the same: a record name)
SECRET_PREFIX = "whsec_"  # noqa: S105 (what a secret starts with, as Stripe's do)
MIN_SECRET_CHARS = 32


def checked_url(raw: str) -> str:
    """The webhook URL if it is https, or http to a loopback address (a receiver on the same
    machine); anything else is a one-line configuration error."""
    parts = urlsplit(raw)
    host = parts.hostname or ""
    if not host or parts.scheme not in ("https", "http"):
        raise ConfigError("FATCTL_WEBHOOK_URL must be an https:// URL with a host")
    if parts.scheme == "http" and not is_loopback_host(host):
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


def secret_overlap(settings: Settings) -> timedelta:
    """`FATCTL_WEBHOOK_SECRET_OVERLAP_H` as a duration; a bad value is the operator's (exit 2)."""
    raw = str(settings.webhook_secret_overlap_h).strip()
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 24 * 30:
        raise ConfigError(
            f"FATCTL_WEBHOOK_SECRET_OVERLAP_H: {raw[:20]!r} is not a number of hours from 0 to 720"
        )
    return timedelta(hours=hours)


def store_secret(
    session: Session,
    ring: KeyRing,
    secret: Sensitive,
    *,
    now: datetime | None = None,
    overlap: timedelta = timedelta(0),
) -> str:
    """Seal `secret` as the signing secret; the one it replaces keeps signing until
    `now + overlap` (none when `overlap` is zero)."""
    if len(secret.reveal()) < MIN_SECRET_CHARS:
        raise ConfigError(f"a webhook signing secret needs at least {MIN_SECRET_CHARS} characters")
    if overlap > timedelta(0) and now is not None:
        try:
            replaced = secret_store.get(session, ring, agent_pk=None, name=SIGNING_SECRET)
        except NotFound:
            replaced = None
        if replaced is not None and replaced.reveal() != secret.reveal():
            secret_store.put(session, ring, agent_pk=None, name=PREVIOUS_SECRET, value=replaced,
                             expires_at=now + overlap)  # fmt: skip
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


def signing_secrets(session: Session, ring: KeyRing, now: datetime) -> list[Sensitive]:
    """The secrets a delivery at `now` is signed with: the current one, then the replaced one
    while its overlap lasts."""
    secrets = [signing_secret(session, ring)]
    previous = _live_previous(session, now)
    if previous:
        secrets.append(secret_store.get(session, ring, agent_pk=None, name=PREVIOUS_SECRET))
    return secrets


def _live_previous(session: Session, now: datetime) -> bool:
    from sqlmodel import col, select

    from fatctl.state.models import Secret

    query = select(Secret.expires_at).where(Secret.name == PREVIOUS_SECRET,
                                            col(Secret.agent_pk).is_(None))  # fmt: skip
    expires = session.exec(query).first()
    if expires is None:
        return False
    aware = expires if expires.tzinfo else expires.replace(tzinfo=now.tzinfo)  # SQLite: naive UTC
    return bool(aware > now)


def check_ready(db: Engine, ring: KeyRing, settings: Settings) -> None:
    """Refuse (one line, exit 2) a malformed URL, or a URL with no signing secret to sign with:
    `fatctl serve` checks before it listens, so events never pile up as dead letters for a
    setting the operator can fix now."""
    if webhook_url(settings) is None:
        return
    with session_scope(db) as session:
        signing_secret(session, ring)
