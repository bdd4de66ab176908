"""The notification channels' settings: a bad one is one line (fatctl serve refuses it at start,
exit 2), a webhook URL's token never shows in an error, and the bodies say what happened."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fatctl.config import Settings
from fatctl.errors import ConfigError
from fatctl.monitoring.notify_channels import (
    EMAIL,
    WEBHOOK,
    check_ready,
    configured,
    email,
    limits,
    smtp_settings,
    webhook_body,
)
from fatctl.monitoring.notify_rules import FIRING, Message, Notice
from fatctl.sensitive import Sensitive

BASE = Settings(data_dir=Path("/nonexistent"), database_url="sqlite:///nonexistent")
MAIL = replace(BASE, notify_smtp_host="mail.example", notify_smtp_from="fatctl@ops.example",
               notify_smtp_to="a@ops.example, b@ops.example")  # fmt: skip
NOTICE = Notice("AgentDown{agent=alpha}", "AgentDown", FIRING, "page",
                "Agent alpha has not been ready for 10 minutes",
                datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # fmt: skip


def test_nothing_configured_is_no_channel() -> None:
    assert configured(BASE) == {}
    check_ready(BASE)


def test_both_channels_and_the_defaults() -> None:
    chosen = replace(MAIL, notify_webhook_url=Sensitive("https://hooks.example/T0/B1/secret"))
    assert sorted(configured(chosen)) == [EMAIL, WEBHOOK]
    smtp = smtp_settings(MAIL)
    assert smtp is not None and (smtp.port, smtp.tls) == (587, "starttls")
    assert smtp.to == ("a@ops.example", "b@ops.example")
    assert smtp_settings(replace(MAIL, notify_smtp_tls="ssl")).port == 465  # type: ignore[union-attr]
    assert (limits(BASE).per_window, limits(BASE).window_s) == (10, 3600.0)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (
            {"notify_webhook_url": Sensitive("http://hooks.example/T0/secret-token")},
            "must be https",
        ),
        ({"notify_webhook_url": Sensitive("ftp://hooks.example/secret-token")}, "https:// URL"),
        ({"notify_smtp_tls": "none"}, "only for a relay on loopback"),
        ({"notify_smtp_tls": "maybe"}, "FATCTL_NOTIFY_SMTP_TLS must be one of"),
        ({"notify_smtp_to": ""}, "need e-mail addresses"),
        ({"notify_smtp_port": "99999"}, "FATCTL_NOTIFY_SMTP_PORT"),
        ({"notify_max_per_window": "0"}, "FATCTL_NOTIFY_MAX_PER_WINDOW"),
        ({"notify_window_min": "soon"}, "FATCTL_NOTIFY_WINDOW_MIN"),
        ({"notify_smtp_user": "ops"}, "without FATCTL_NOTIFY_SMTP_PASSWORD"),
    ],
)
def test_a_bad_setting_is_one_line_without_the_secret(
    changes: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_ready(replace(MAIL, **changes))  # type: ignore[arg-type]
    message = caught.value.one_line()
    assert says in message and "\n" not in message
    assert "secret-token" not in message


def test_http_to_loopback_is_allowed() -> None:
    assert WEBHOOK in configured(
        replace(BASE, notify_webhook_url=Sensitive("http://127.0.0.1:9/x"))
    )


def test_the_bodies_name_the_alert_and_its_state() -> None:
    body = json.loads(webhook_body(Message((NOTICE,))))
    assert body["text"].startswith("[FIRING:page] Agent alpha has not been ready")
    assert body["alerts"] == [{"alert": "AgentDown", "key": "AgentDown{agent=alpha}",
                               "status": "firing", "severity": "page", "summary": NOTICE.summary,
                               "since": "2026-12-07T09:00:00+00:00"}]  # fmt: skip
    smtp = smtp_settings(MAIL)
    assert smtp is not None
    mail = email(smtp, Message((NOTICE,)))
    assert mail["To"] == "a@ops.example, b@ops.example"
    assert "AgentDown{agent=alpha} (since 2026-12-07 09:00 UTC)" in mail.get_content()


def test_a_subject_with_a_line_break_still_makes_a_mail() -> None:
    """A channel's name comes from the box's fat-health: a newline in it must not make the
    e-mail library refuse the message (and with it the sweep's notifications)."""
    smtp = smtp_settings(MAIL)
    assert smtp is not None
    odd = replace(NOTICE, summary="Channel tele\ngram of alpha is not ready")
    mail = email(smtp, Message((odd,)))
    assert mail["Subject"] == "[FIRING:page] Channel tele gram of alpha is not ready"
