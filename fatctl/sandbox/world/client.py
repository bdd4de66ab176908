"""The world stand-ins' admin side, as the sandbox's operator and tests use it: issue a model
key (as a provider's console would), issue a bot token (as BotFather would), send a Telegram
message to a bot as a user, and read what the stand-ins recorded."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fatctl.calllog import api_call
from fatctl.errors import FatctlError
from fatctl.sandbox.apiemu.spawn import find_emulator


class WorldError(FatctlError):
    exit_code = 1


def admin_url(sandbox_state: Path) -> str:
    found = find_emulator("world", sandbox_state / "world")
    if found is None:
        raise WorldError("the sandbox's world stand-ins are not running: `fatctl sandbox up`")
    return str(found.info["admin_url"])


def _call(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    if not url.startswith("http://127.0.0.1:"):
        raise WorldError(f"the world admin is on loopback only, not {url[:40]}")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",  # noqa: S310
                                     headers=headers)  # fmt: skip
    with (
        api_call(request.get_method(), url, headers) as call,
        urllib.request.urlopen(request, timeout=10) as response,  # noqa: S310
    ):
        call.outcome = response.status
        return json.loads(response.read())


def issue_model_key(admin: str) -> str:
    """A new API key the model stand-in accepts from now on."""
    key = "sk-sandbox-" + secrets.token_urlsafe(24)
    _call(f"{admin}/model/keys", {"key": key})
    return key


def issue_bot_token(admin: str) -> tuple[str, int]:
    """A new bot token (and the bot's id) the Telegram stand-in accepts from now on."""
    bot_id = 7_000_000_000 + secrets.randbelow(999_999_999)
    token = f"{bot_id}:AA" + secrets.token_urlsafe(30)[:33].replace("-", "x")
    _call(f"{admin}/telegram/bots", {"token": token})
    return token, bot_id


def send_as_user(admin: str, bot_id: int, from_id: int, text: str) -> int:
    """Queue a private message from Telegram user `from_id` to the bot; its update id."""
    reply = _call(f"{admin}/telegram/updates",
                  {"bot_id": bot_id, "from_id": from_id, "text": text})  # fmt: skip
    return int(reply["update_id"])


def records(admin: str, kind: str) -> list[dict[str, Any]]:
    return list(_call(f"{admin}/records/{kind}"))


def wait_record(
    admin: str, kind: str, match: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any] | None:
    """The first record of `kind` that matches, polling until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        for item in records(admin, kind):
            if match(item):
                return item
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.25)
