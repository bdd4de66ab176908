"""What an agent serves, as pure rules: model choice by plan, sender and token shapes (whole
strings only: a trailing newline is bad input), the rendered openclaw.json (no secret in it,
allowlists from senders, the Fireworks workaround) and the environment file's composition."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cloud_init.openclaw_config import openclaw_config
from fatctl.domain import ServicePlan
from fatctl.errors import BadInput
from fatctl.sensitive import Sensitive
from fatctl.services.agents.gateway_env import compose
from fatctl.serving import (
    CHANNEL_CREDENTIALS,
    DEFAULT_MANAGED_MODEL,
    ChannelKind,
    SenderKind,
    channel_secret,
    model_choice,
    resolve_model,
    sender,
)
from tests.unit.cloud_init.variants import Variant, make_spec

TELEGRAM_TOKEN = CHANNEL_CREDENTIALS[ChannelKind.TELEGRAM][0]


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("4242", None, (SenderKind.TELEGRAM, "4242")),
        ("Ann@Example.COM", None, (SenderKind.EMAIL, "ann@example.com")),
        ("+4915123456789", None, (SenderKind.PHONE, "+4915123456789")),
        ("U0123ABCDE", None, (SenderKind.SLACK, "U0123ABCDE")),
        ("123", "telegram", (SenderKind.TELEGRAM, "123")),
    ],
)
def test_senders_are_recognised_by_shape(value: str, kind: str | None, expected: object) -> None:
    assert sender(value, kind) == expected


@pytest.mark.parametrize(
    "value",
    ["", "4242\n", "42 42", "0042", "12ab", "+1", "+49 151", "U01", "u0123abcde", "a@b",
     "x" * 300, "4242\x1b[31m", "\u0664\u0662"],
)  # fmt: skip
def test_bad_senders_are_refused_in_one_line(value: str) -> None:
    with pytest.raises(BadInput) as err:
        sender(value)
    assert "\n" not in err.value.one_line()


def test_sender_kind_must_be_known() -> None:
    with pytest.raises(BadInput, match="unknown sender kind"):
        sender("4242", "fax")


@pytest.mark.parametrize(
    "token",
    ["", "123:abc", "123456789:" + "A" * 29, "123456789:" + "A" * 35 + "\n",
     "abc:" + "A" * 35, "123456789:" + "A" * 30 + " x"],
)  # fmt: skip
def test_malformed_bot_tokens_are_refused_without_echo(token: str) -> None:
    with pytest.raises(BadInput) as err:
        channel_secret(TELEGRAM_TOKEN, token)
    assert token.strip() not in err.value.one_line() or not token.strip()


def test_model_choice_rules() -> None:
    assert model_choice(DEFAULT_MANAGED_MODEL).provider == "fireworks"
    assert model_choice("custom/m", "http://10.77.0.1:9/v1").base_url == "http://10.77.0.1:9/v1"
    for bad, url in [("custom/m", ""), ("openai/gpt", "http://x/v1"), ("nope/x", ""),
                     ("openai/", ""), ("gpt-5", ""), ("openai/gpt\n", ""),
                     ("custom/m", "ftp://x"), ("custom/m", "http://x/v1\n")]:  # fmt: skip
        with pytest.raises(BadInput):
            model_choice(bad, url)


def test_plan_decides_the_model() -> None:
    managed = resolve_model(ServicePlan.MANAGED, "", "", DEFAULT_MANAGED_MODEL)
    assert managed.ref == DEFAULT_MANAGED_MODEL
    with pytest.raises(BadInput, match="BYOK agent needs a model"):
        resolve_model(ServicePlan.BYOK, "", "", DEFAULT_MANAGED_MODEL)
    with pytest.raises(BadInput, match="BYOK supports"):
        resolve_model(ServicePlan.BYOK, DEFAULT_MANAGED_MODEL, "", DEFAULT_MANAGED_MODEL)
    assert resolve_model(ServicePlan.BYOK, "anthropic/claude-x", "", "").key_env == (
        "ANTHROPIC_API_KEY"
    )


def test_config_allowlists_each_channel_from_its_senders() -> None:
    spec = make_spec(Variant("debian-12", True, ServicePlan.BYOK, False))
    channels = openclaw_config(spec)["channels"]
    assert channels["telegram"]["dmPolicy"] == "allowlist"
    assert channels["telegram"]["allowFrom"] == ["4242"]
    assert channels["whatsapp"]["allowFrom"] == ["+4915123456789"]
    # Nobody allowed on Slack yet: its direct messages are refused, not opened to pairing.
    assert channels["slack"]["dmPolicy"] == "disabled" and "allowFrom" not in channels["slack"]
    assert all(c["groupPolicy"] == "disabled" for c in channels.values())
    alone = replace(spec, senders=(("email", "alice@example.com"),))
    assert openclaw_config(alone)["channels"]["telegram"]["dmPolicy"] == "disabled"


def test_config_enables_the_channel_plugins_it_uses() -> None:
    """Slack and WhatsApp are OpenClaw plugins: the config enables exactly the ones whose
    channel the agent has (without the entry the gateway leaves the channel unstarted), Slack's
    tokens are ${VAR} references, and WhatsApp's login is kept on /data."""
    spec = make_spec(Variant("debian-12", True, ServicePlan.BYOK, False))
    config = openclaw_config(spec)
    assert config["plugins"] == {"entries": {"slack": {"enabled": True},
                                             "whatsapp": {"enabled": True}}}  # fmt: skip
    slack = config["channels"]["slack"]
    assert slack["mode"] == "socket"
    assert (slack["botToken"], slack["appToken"]) == ("${SLACK_BOT_TOKEN}", "${SLACK_APP_TOKEN}")
    whatsapp = config["channels"]["whatsapp"]
    assert whatsapp["accounts"] == {"default": {"authDir": "/data/credentials/whatsapp/default"}}
    assert whatsapp["dmPolicy"] == "allowlist"  # the root-level policy the account inherits
    only_slack = openclaw_config(replace(spec, channels=("slack", "telegram")))
    assert only_slack["plugins"] == {"entries": {"slack": {"enabled": True}}}
    assert "plugins" not in openclaw_config(replace(spec, channels=("telegram",)))
    managed = openclaw_config(make_spec(Variant("debian-12", True, ServicePlan.MANAGED, False)))
    assert "plugins" not in managed and "channels" not in managed


def test_config_names_keys_never_values() -> None:
    """Keys are ${VAR} references to gateway.env; Fireworks is declared under an id of its own
    and read from a variable of fatctl's (OpenClaw would fetch its plugin for `fireworks`)."""
    managed = openclaw_config(make_spec(Variant("debian-12", True, ServicePlan.MANAGED, False)))
    assert managed["agents"]["defaults"]["model"]["primary"] == (
        "fat-fireworks/accounts/fireworks/models/minimax-m2p1"
    )
    provider = managed["models"]["providers"]["fat-fireworks"]
    assert provider["apiKey"] == "${FAT_FIREWORKS_API_KEY}"
    assert "FIREWORKS_API_KEY" not in json.dumps(managed).replace("FAT_FIREWORKS_API_KEY", "")
    assert managed["update"] == {"checkOnStart": False}
    assert managed["session"] == {"dmScope": "per-channel-peer"}
    byok = openclaw_config(make_spec(Variant("debian-12", True, ServicePlan.BYOK, False)))
    assert byok["models"]["providers"]["custom"]["apiKey"] == "${FAT_CUSTOM_MODEL_API_KEY}"
    assert byok["channels"]["telegram"]["apiRoot"] == "http://10.77.0.1:8080"


def test_env_file_refuses_what_systemd_would_misread() -> None:
    text = compose({"B_KEY": Sensitive("sk-1"), "A_TOKEN": Sensitive("123:abc_DEF-ghi")})
    assert text.reveal() == "A_TOKEN=123:abc_DEF-ghi\nB_KEY=sk-1\n"
    for value in ("two\nlines", "has space", 'quo"te', "back\\slash", "$HOME", ""):
        with pytest.raises(BadInput) as err:
            compose({"KEY": Sensitive(value)})
        assert value not in err.value.one_line() or not value
    with pytest.raises(BadInput):
        compose({"lower": Sensitive("x")})
