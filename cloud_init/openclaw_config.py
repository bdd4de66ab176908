"""The gateway's `openclaw.json`, as a pure function of the `AgentSpec`.

Keys follow the pinned OpenClaw's own reference (docs/gateway/configuration-reference.md and
the pages it links, in the npm package): the config is validated strictly and an unknown key
stops the gateway with exit 78, so nothing here is guessed.

No secret is ever written into it. Keys and bot tokens reach the gateway through `gateway.env`:
a custom provider's `apiKey` and Slack's `botToken`/`appToken` are `${VAR}` references OpenClaw
substitutes from the environment (docs/gateway/configuration/environment-variables.md),
built-in providers read their documented variables (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`), and
Telegram falls back to `TELEGRAM_BOT_TOKEN` for the default account.

Slack and WhatsApp are OpenClaw plugins (`@openclaw/slack`, `@openclaw/whatsapp`) that the
install script puts where the gateway loads them; the config enables the ones the agent uses
(`plugins.entries.<id>.enabled`), so the gateway never tries to fetch one at start.
"""

from __future__ import annotations

from typing import Any

from cloud_init import layout as L
from fatctl.domain import AgentSpec
from fatctl.serving import (
    CHANNEL_CREDENTIALS,
    CHANNEL_PLUGINS,
    CHANNEL_SENDERS,
    CUSTOM_PROVIDER,
    ChannelKind,
    ModelChoice,
)

# Providers OpenClaw does not ship in core for the pinned version, declared under
# `models.providers` as OpenAI-compatible endpoints, by the id they get there. Fireworks is not
# declared as `fireworks`: OpenClaw takes that id for its Fireworks plugin, which is not on the
# npm registry, tries to install it from ClawHub at start and, offline, refuses to start
# ("requires state migration", exit 78; seen on a box).
FIREWORKS_BASE_URL = "https://api.fireworks.ai/inference/v1"
DECLARED_PROVIDERS = {"fireworks": "fat-fireworks", CUSTOM_PROVIDER: CUSTOM_PROVIDER}
# Slack's credentials by the config key that takes each (docs/channels/slack/setup.md).
SLACK_TOKEN_KEYS = {"channel:slack:bot-token": "botToken", "channel:slack:app-token": "appToken"}


def openclaw_config(spec: AgentSpec) -> dict[str, Any]:
    """The whole config file for `spec`'s gateway."""
    config: dict[str, Any] = {
        "gateway": {
            "mode": "local",
            "port": L.GATEWAY_PORT,
            "bind": "loopback",
            "auth": {"mode": "token"},
            # Caddy on the same box is the only proxy whose forwarded headers count.
            "trustedProxies": ["127.0.0.1", "::1"],
            "controlUi": {"allowedOrigins": [f"https://{spec.fqdn}"]},
        },
        "agents": {"defaults": {"workspace": L.WORKSPACE_DIR}},
        "skills": {"load": {"extraDirs": [L.SKILLS_DIR]}},
    }
    # No calls home: the update check and the remote model catalog are off (boxes are updated by
    # fatctl's rollouts; the sandbox's boxes have no internet).
    config["update"] = {"checkOnStart": False}
    config["models"] = {"catalogRefresh": {"enabled": False}}
    # Each allowed sender gets a conversation of their own (OpenClaw's default `main` shares one
    # session between everyone who may write to the agent).
    config["session"] = {"dmScope": "per-channel-peer"}
    if spec.model is not None:
        config["agents"]["defaults"]["model"] = {"primary": primary(spec.model)}
        if spec.model.provider in DECLARED_PROVIDERS:
            config["models"].update({"mode": "merge", "providers": _provider(spec.model)})
    kinds = [ChannelKind(kind) for kind in sorted(spec.channels)]
    if kinds:
        config["channels"] = {kind.value: _channel(spec, kind) for kind in kinds}
    plugins = {CHANNEL_PLUGINS[k]: {"enabled": True} for k in kinds if k in CHANNEL_PLUGINS}
    if plugins:
        config["plugins"] = {"entries": plugins}
    return config


def primary(model: ModelChoice) -> str:
    """`agents.defaults.model.primary`: the provider's id in the config, then the model."""
    return f"{DECLARED_PROVIDERS.get(model.provider, model.provider)}/{model.model}"


def _provider(model: ModelChoice) -> dict[str, Any]:
    base_url = model.base_url or FIREWORKS_BASE_URL
    entry = {"id": model.model, "name": model.model, "input": ["text"]}
    return {
        DECLARED_PROVIDERS[model.provider]: {
            "baseUrl": base_url,
            "apiKey": "${" + model.key_env + "}",
            "api": "openai-completions",
            "models": [entry],
        }
    }


def allowed(spec: AgentSpec, kind: ChannelKind) -> list[str]:
    """The ids `kind`'s allowlist is rendered from (the senders of the matching kind)."""
    wanted = CHANNEL_SENDERS[kind].value
    return [value for sender_kind, value in spec.senders if sender_kind == wanted]


def _channel(spec: AgentSpec, kind: ChannelKind) -> dict[str, Any]:
    ids = allowed(spec, kind)
    # OpenClaw rejects `allowlist` with an empty `allowFrom`; with nobody allowed yet, direct
    # messages are refused outright rather than opened to pairing requests from strangers.
    block: dict[str, Any] = {"enabled": True, "dmPolicy": "allowlist" if ids else "disabled"}
    if ids:
        block["allowFrom"] = ids
    block["groupPolicy"] = "disabled"  # an agent is its owner's; groups are not part of the plan
    if kind == ChannelKind.TELEGRAM and spec.telegram_api_root:
        block["apiRoot"] = spec.telegram_api_root
    if kind == ChannelKind.SLACK:
        block["mode"] = "socket"
        for cred in CHANNEL_CREDENTIALS[kind]:
            block[SLACK_TOKEN_KEYS[cred.secret]] = "${" + cred.env + "}"
    if kind == ChannelKind.WHATSAPP:
        # The default account's own settings: its login on /data (the root-level policy and
        # allowlist above still apply to it).
        block["accounts"] = {"default": {"authDir": L.WHATSAPP_AUTH_DIR}}
    return block
