"""Where `fatctl serve`'s own notifications go: a webhook URL and/or e-mail over SMTP.

A channel of its own, `FATCTL_NOTIFY_WEBHOOK_URL`, not the platform's signed events
(`FATCTL_WEBHOOK_URL`): alerts are for the operator, and the platform's receiver has no use
for them; that outbox retries an event for 1.4 hours, which a page must not wait out; and its
delivery lives in `fatctl.service`, above this package. The body is JSON with a `text` field,
which Slack-, Mattermost- and Rocket.Chat-style incoming webhooks show as is, and the alerts as
data beside it. Such URLs carry their token in the path: the URL is never logged or shown, and
a failure says only the status or the error's kind (the URL is a secret setting).

E-mail is one message per notice (or summary) to `FATCTL_NOTIFY_SMTP_TO`, through
`FATCTL_NOTIFY_SMTP_HOST`, with STARTTLS unless `FATCTL_NOTIFY_SMTP_TLS` says `ssl` (implicit
TLS, port 465) or `none` (a relay on loopback only: a password never crosses a network in
clear text). The password is a secret setting (`Sensitive`).
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from fatctl.errors import ConfigError
from fatctl.monitoring.notify_rules import Message
from fatctl.validation import is_loopback_host

if TYPE_CHECKING:
    from fatctl.config import Settings

WEBHOOK, EMAIL = "webhook", "email"
TLS_MODES = ("starttls", "ssl", "none")
TIMEOUT_S = 10.0

Send = Callable[[Message], str | None]  # returns why it failed, or None when sent


def _number(raw: str, env: str, low: int, high: int) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{env}: {str(raw)[:20]!r} is not a whole number from {low} to {high}")
    return value


@dataclass(frozen=True)
class Limits:
    per_window: int
    window_s: float


def limits(settings: Settings) -> Limits:
    """`FATCTL_NOTIFY_MAX_PER_WINDOW` messages per `FATCTL_NOTIFY_WINDOW_MIN` per channel."""
    most = _number(settings.notify_max_per_window, "FATCTL_NOTIFY_MAX_PER_WINDOW", 1, 1000)
    minutes = _number(settings.notify_window_min, "FATCTL_NOTIFY_WINDOW_MIN", 1, 7 * 24 * 60)
    return Limits(most, minutes * 60.0)


def webhook_url(settings: Settings) -> str | None:
    secret = settings.notify_webhook_url
    raw = secret.reveal().strip() if secret is not None else ""
    if not raw:
        return None
    parts = urlsplit(raw)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError("FATCTL_NOTIFY_WEBHOOK_URL must be an https:// URL with a host")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError("FATCTL_NOTIFY_WEBHOOK_URL must be https (plain http only to loopback)")
    return raw


def webhook_body(message: Message) -> bytes:
    alerts = [{"alert": n.rule, "key": n.key, "status": n.status, "severity": n.severity,
               "summary": n.summary, "since": n.since.isoformat() if n.since else None}
              for n in message.notices]  # fmt: skip
    doc = {"source": "fatctl", "text": message.text, "summary": message.summary, "alerts": alerts}
    return json.dumps(doc, sort_keys=True).encode()


def webhook_sender(url: str, timeout_s: float = TIMEOUT_S) -> Send:
    def send(message: Message) -> str | None:
        try:
            answer = httpx.post(url, content=webhook_body(message), timeout=timeout_s,
                                headers={"Content-Type": "application/json"},
                                follow_redirects=False)  # fmt: skip
        except httpx.HTTPError as exc:
            return f"request failed: {type(exc).__name__}"
        return None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"

    return send


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    tls: str
    sender: str
    to: tuple[str, ...]
    user: str = ""


def smtp_settings(settings: Settings) -> Smtp | None:
    """The SMTP channel, or None when `FATCTL_NOTIFY_SMTP_HOST` is empty; a half-configured
    one is refused (one line) rather than silently not sending."""
    host = settings.notify_smtp_host.strip()
    if not host:
        return None
    tls = settings.notify_smtp_tls.strip().lower() or "starttls"
    if tls not in TLS_MODES:
        raise ConfigError(f"FATCTL_NOTIFY_SMTP_TLS must be one of {', '.join(TLS_MODES)}")
    if tls == "none" and not is_loopback_host(host):
        raise ConfigError("FATCTL_NOTIFY_SMTP_TLS=none is only for a relay on loopback")
    to = tuple(a.strip() for a in settings.notify_smtp_to.split(",") if a.strip())
    sender = settings.notify_smtp_from.strip()
    if not to or "@" not in sender or any("@" not in a for a in to):
        raise ConfigError("FATCTL_NOTIFY_SMTP_FROM and FATCTL_NOTIFY_SMTP_TO need e-mail addresses")
    default_port = 465 if tls == "ssl" else 587
    port = _number(settings.notify_smtp_port or str(default_port), "FATCTL_NOTIFY_SMTP_PORT",
                   1, 65535)  # fmt: skip
    return Smtp(host, port, tls, sender, to, settings.notify_smtp_user.strip())


def email(smtp: Smtp, message: Message) -> EmailMessage:
    mail = EmailMessage()
    # A header may not hold a line break (EmailMessage refuses it), and a subject can carry a
    # label a box reported (a channel's name): control characters become spaces.
    mail["Subject"] = "".join(c if c.isprintable() else " " for c in message.subject)[:200]
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(smtp.to)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain="fatctl")
    mail.set_content(message.text + "\n")
    return mail


def smtp_sender(smtp: Smtp, password: str | None, timeout_s: float = TIMEOUT_S) -> Send:
    def send(message: Message) -> str | None:
        try:
            if smtp.tls == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    smtp.host, smtp.port, timeout=timeout_s, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout_s)
            with client:
                if smtp.tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if smtp.user and password:
                    client.login(smtp.user, password)
                client.send_message(email(smtp, message))
        except smtplib.SMTPResponseException as exc:
            return f"SMTP {exc.smtp_code}"
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            # ValueError: a message the e-mail library refuses; one failed send, not a sweep.
            return f"SMTP failed: {type(exc).__name__}"
        return None

    return send


def configured(settings: Settings) -> dict[str, Send]:
    """The channels the settings configure, by name (none: notifications are off)."""
    channels: dict[str, Send] = {}
    if (url := webhook_url(settings)) is not None:
        channels[WEBHOOK] = webhook_sender(url)
    if (smtp := smtp_settings(settings)) is not None:
        secret = settings.notify_smtp_password
        if smtp.user and secret is None:
            # Sent unauthenticated, a relay would refuse every message (530), seen only in the
            # audit trail: refused at start instead.
            raise ConfigError("FATCTL_NOTIFY_SMTP_USER is set without FATCTL_NOTIFY_SMTP_PASSWORD")
        channels[EMAIL] = smtp_sender(smtp, secret.reveal() if secret is not None else None)
    return channels


def check_ready(settings: Settings) -> None:
    """Refuse bad FATCTL_NOTIFY_* settings (one line, exit 2) before `fatctl serve` starts,
    rather than in every sweep's notifications."""
    configured(settings)
    limits(settings)
