"""What an agent serves its customer: the model it thinks with, the channels it answers on and
who may talk to it. Pure types and validators (no I/O), shared by the CLI, the state layer and
the renderers.

The plan decides whose key pays for the model: managed agents use the platform's provider key
(a global secret), BYOK agents their owner's (an agent-scoped secret). Keys and channel tokens
never appear here: they are sealed in the secret store and only ever reach the box's
`gateway.env`; these types carry the names under which they are stored and the environment
variables through which the gateway reads them.

Every validator matches the whole string (`fullmatch`): a trailing newline is bad input, not a
second sender.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from fatctl import validation
from fatctl.domain import ServicePlan
from fatctl.errors import BadInput

# The FAT tier's managed model: MiniMax M2.1 through Fireworks (OpenClaw's `fireworks` provider).
DEFAULT_MANAGED_MODEL = "fireworks/accounts/fireworks/models/minimax-m2p1"
CUSTOM_PROVIDER = "custom"  # a BYOK OpenAI-compatible endpoint declared under models.providers

# provider -> the environment variable the gateway reads its key from: OpenClaw's documented
# ones for its built-in providers (providers/*.md); for the providers fatctl declares itself
# (cloud_init.openclaw_config) a name of fatctl's, referenced as ${VAR} from the config. Not
# FIREWORKS_API_KEY: OpenClaw takes that variable as a request for its Fireworks plugin, which
# is not on the npm registry, and a box offline then fails to start (seen on a box).
PROVIDER_KEY_ENV: dict[str, str] = {
    "fireworks": "FAT_FIREWORKS_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    CUSTOM_PROVIDER: "FAT_CUSTOM_MODEL_API_KEY",
}
BYOK_PROVIDERS = frozenset({"anthropic", "openai", CUSTOM_PROVIDER})
MAX_SECRET_BYTES = 8192  # a model key or bot token is well under this; bound what is read

_MODEL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,150}")
_BASE_URL_RE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]{1,200}(?:/[A-Za-z0-9._~/-]{0,90})?")


class ChannelKind(enum.StrEnum):
    TELEGRAM = "telegram"
    SLACK = "slack"
    WHATSAPP = "whatsapp"


class SenderKind(enum.StrEnum):
    EMAIL = "email"
    TELEGRAM = "telegram"  # a numeric Telegram user id
    SLACK = "slack"  # a Slack member id, U… or W…
    PHONE = "phone"  # E.164, for WhatsApp


# The channels that are OpenClaw plugins of their own (npm `@openclaw/<id>`, released under
# OpenClaw's version). A config naming such a channel without its plugin makes the gateway try
# to install it from the network at start, so every runtime version is installed with them
# (cloud_init's install script, as OpenClaw's own trusted official installs) and the config
# enables the ones the agent uses. Telegram is part of OpenClaw itself.
CHANNEL_PLUGINS: dict[ChannelKind, str] = {
    ChannelKind.SLACK: "slack",
    ChannelKind.WHATSAPP: "whatsapp",
}

# Which senders each channel's allowlist is rendered from.
CHANNEL_SENDERS: dict[ChannelKind, SenderKind] = {
    ChannelKind.TELEGRAM: SenderKind.TELEGRAM,
    ChannelKind.SLACK: SenderKind.SLACK,
    ChannelKind.WHATSAPP: SenderKind.PHONE,
}

_SENDER_RES: dict[SenderKind, re.Pattern[str]] = {
    SenderKind.TELEGRAM: re.compile(r"[1-9][0-9]{0,15}"),
    SenderKind.SLACK: re.compile(r"[UW][A-Z0-9]{8,12}"),
    SenderKind.PHONE: re.compile(r"\+[1-9][0-9]{6,14}"),
}
_SENDER_HINTS = {
    SenderKind.TELEGRAM: "a numeric Telegram user id such as 123456789",
    SenderKind.SLACK: "a Slack member id such as U0123ABCD",
    SenderKind.PHONE: "a phone number in E.164 form such as +4915123456789",
}


@dataclass(frozen=True)
class ChannelCredential:
    """One credential a channel needs: the stored secret's name and the gateway's env var."""

    secret: str
    env: str
    pattern: re.Pattern[str]
    hint: str


CHANNEL_CREDENTIALS: dict[ChannelKind, tuple[ChannelCredential, ...]] = {
    ChannelKind.TELEGRAM: (
        ChannelCredential("channel:telegram:bot-token", "TELEGRAM_BOT_TOKEN",
                          re.compile(r"[0-9]{5,20}:[A-Za-z0-9_-]{30,60}"),
                          "a BotFather token such as 123456789:AA…"),
    ),
    ChannelKind.SLACK: (
        ChannelCredential("channel:slack:bot-token", "SLACK_BOT_TOKEN",
                          re.compile(r"xoxb-[A-Za-z0-9-]{10,250}"), "a bot token xoxb-…"),
        ChannelCredential("channel:slack:app-token", "SLACK_APP_TOKEN",
                          re.compile(r"xapp-[A-Za-z0-9-]{10,250}"), "an app-level token xapp-…"),
    ),
    ChannelKind.WHATSAPP: (),  # paired by QR on the box; OpenClaw keeps the login itself
}  # fmt: skip


@dataclass(frozen=True)
class ModelChoice:
    """The model an agent uses: `provider/model`, plus the endpoint of a custom provider."""

    provider: str
    model: str
    base_url: str = ""

    @property
    def ref(self) -> str:
        """The `provider/model` string OpenClaw's `agents.defaults.model.primary` takes."""
        return f"{self.provider}/{self.model}"

    @property
    def key_env(self) -> str:
        return PROVIDER_KEY_ENV[self.provider]


def key_secret_name(provider: str) -> str:
    """The secret a provider's key is sealed under (global for managed, per agent for BYOK)."""
    return f"{provider}-api-key"


def model_choice(ref: str, base_url: str = "") -> ModelChoice:
    """Parse and check `provider/model` (and a custom provider's base URL)."""
    if not isinstance(ref, str) or "/" not in ref:
        raise BadInput(f"model {ref[:60]!r} must be provider/model, e.g. {DEFAULT_MANAGED_MODEL}")
    provider, model = ref.split("/", 1)
    if provider not in PROVIDER_KEY_ENV:
        known = ", ".join(sorted(PROVIDER_KEY_ENV))
        raise BadInput(f"unknown model provider {provider[:30]!r}: use one of {known}")
    if not _MODEL_ID_RE.fullmatch(model):
        raise BadInput(f"model id {model[:60]!r} is not a valid model id")
    if provider == CUSTOM_PROVIDER and not _BASE_URL_RE.fullmatch(base_url or ""):
        raise BadInput("a custom model needs --base-url http(s)://host[:port]/path")
    if provider != CUSTOM_PROVIDER and base_url:
        raise BadInput("--base-url is only for the custom provider")
    return ModelChoice(provider, model, base_url)


def resolve_model(
    plan: ServicePlan, stored: str, base_url: str, managed_default: str
) -> ModelChoice:
    """The agent's model: its own choice, else the plan's default (managed) — BYOK must choose."""
    if stored:
        choice = model_choice(stored, base_url)
    elif plan == ServicePlan.MANAGED:
        choice = model_choice(managed_default)
    else:
        raise BadInput("a BYOK agent needs a model: `fatctl model set AGENT provider/model`")
    if plan == ServicePlan.BYOK and choice.provider not in BYOK_PROVIDERS:
        known = ", ".join(sorted(BYOK_PROVIDERS))
        raise BadInput(f"BYOK supports the providers {known}, not {choice.provider}")
    return choice


def channel_kind(value: str) -> ChannelKind:
    try:
        return ChannelKind(value)
    except ValueError:
        known = ", ".join(k.value for k in ChannelKind)
        raise BadInput(f"unknown channel kind {value[:30]!r}: use one of {known}") from None


def channel_secret(cred: ChannelCredential, value: str) -> str:
    """Check one channel credential's shape; the message never echoes the value."""
    if not cred.pattern.fullmatch(value):
        raise BadInput(f"{cred.secret.split(':')[-1]} is malformed: expected {cred.hint}")
    return value


def sender(value: str, kind: str | None = None) -> tuple[SenderKind, str]:
    """Validate an allowed sender, inferring its kind from its shape unless `kind` is given."""
    if not isinstance(value, str) or not value:
        raise BadInput("sender id is empty")
    chosen = _sender_kind(value, kind)
    if chosen == SenderKind.EMAIL:
        return chosen, validation.email(value).lower()
    if not _SENDER_RES[chosen].fullmatch(value):
        raise BadInput(f"sender {value[:40]!r} is not {_SENDER_HINTS[chosen]}")
    return chosen, value


def _sender_kind(value: str, kind: str | None) -> SenderKind:
    if kind:
        try:
            return SenderKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in SenderKind)
            raise BadInput(f"unknown sender kind {kind[:30]!r}: use one of {known}") from None
    if "@" in value:
        return SenderKind.EMAIL
    if value.startswith("+"):
        return SenderKind.PHONE
    if value[:1] in ("U", "W"):
        return SenderKind.SLACK
    return SenderKind.TELEGRAM
