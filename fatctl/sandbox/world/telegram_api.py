"""A Telegram Bot API stand-in (OpenClaw's `channels.telegram.apiRoot` points here).

Shapes follow the Bot API reference (core.telegram.org/bots/api): requests are
`<apiRoot>/bot<token>/<method>` by GET or POST with query, form or JSON parameters; answers are
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": N, "description": "..."}`; a token
the service never issued is `401 Unauthorized`, an unknown method `404 Not Found`.
`getUpdates` long-polls (`offset` confirms everything below it, `timeout` is honoured up to a
few seconds so the stand-in stops promptly). Updates are injected through the admin side;
every `sendMessage` is recorded (`sent`) with the bot's id, the chat and the text.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fatctl.sandbox.world.records import Recorder

TOKEN_RE = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,60}")
LONG_POLL_CAP_S = 3.0
# Methods whose result is plain `true` in the Bot API (the settings calls a bot makes at start).
TRUE_METHODS = frozenset({
    "deleteWebhook", "setWebhook", "setMyCommands", "deleteMyCommands", "sendChatAction",
    "setMessageReaction", "setMyDescription", "setMyShortDescription", "setMyName",
    "setChatMenuButton", "answerCallbackQuery", "deleteMessage",
})  # fmt: skip


class Bots:
    """Issued bot tokens, each bot's pending updates and message counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, int] = {}  # token -> bot id
        self._queues: dict[int, list[dict[str, Any]]] = {}
        self._next_update = 1
        self._next_message = 1

    def register(self, token: str) -> int:
        if not TOKEN_RE.fullmatch(token):
            raise ValueError("not a bot token")
        bot_id = int(token.split(":", 1)[0])
        with self._lock:
            self._tokens[token] = bot_id
            self._queues.setdefault(bot_id, [])
        return bot_id

    def bot_of(self, token: str) -> int | None:
        with self._lock:
            return self._tokens.get(token)

    def inject(self, bot_id: int, from_id: int, text: str, name: str = "Sender") -> int:
        """Queue a private-chat text message from user `from_id` to the bot; its update id."""
        with self._lock:
            update_id, message_id = self._next_update, self._next_message
            self._next_update += 1
            self._next_message += 1
            user = {"id": from_id, "is_bot": False, "first_name": name, "username": f"u{from_id}"}
            chat = {"id": from_id, "type": "private", "first_name": name, "username": f"u{from_id}"}
            message = {"message_id": message_id, "date": int(time.time()), "chat": chat,
                       "from": user, "text": text}  # fmt: skip
            self._queues.setdefault(bot_id, []).append({"update_id": update_id, "message": message})
            return update_id

    def take(self, bot_id: int, offset: int | None, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            queue = self._queues.setdefault(bot_id, [])
            if offset is not None:
                queue[:] = [u for u in queue if u["update_id"] >= offset]
            return queue[:limit]

    def message_id(self) -> int:
        with self._lock:
            self._next_message += 1
            return self._next_message - 1


def _fail(status: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": status, "description": description},
                        status_code=status)  # fmt: skip


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    kind = request.headers.get("content-type", "")
    if request.method == "POST" and "json" in kind:
        body = json.loads(await request.body() or b"{}")
        params.update(body if isinstance(body, dict) else {})
    elif request.method == "POST" and "x-www-form-urlencoded" in kind:
        params.update(parse_qsl((await request.body()).decode()))
    elif request.method == "POST" and "multipart" in kind:
        raise ValueError("multipart uploads are not served by the stand-in")
    return params


def _int(value: Any, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def router(recorder: Recorder, bots: Bots) -> APIRouter:
    api = APIRouter()

    @api.api_route("/bot{token}/{method}", methods=["GET", "POST"])
    async def call(token: str, method: str, request: Request) -> Any:
        bot_id = bots.bot_of(token)
        if bot_id is None:
            return _fail(401, "Unauthorized")
        try:
            params = await _params(request)
        except ValueError:
            return _fail(400, "Bad Request: can't parse parameters")
        shown = {k: v for k, v in params.items() if k != "text"}  # texts are in `sent` only
        recorder.add("telegram", {"bot": bot_id, "method": method, "params": shown})
        if method == "getUpdates":
            return {"ok": True, "result": await _long_poll(bots, bot_id, params)}
        if method == "getMe":
            return {"ok": True, "result": {"id": bot_id, "is_bot": True,
                    "first_name": f"Bot {bot_id}", "username": f"sandbox_{bot_id}_bot",
                    "can_join_groups": True, "can_read_all_group_messages": False,
                    "supports_inline_queries": False}}  # fmt: skip
        if method == "getWebhookInfo":
            return {"ok": True, "result": {"url": "", "has_custom_certificate": False,
                                           "pending_update_count": 0}}  # fmt: skip
        if method in ("getMyCommands",):
            return {"ok": True, "result": []}
        if method == "sendMessage":
            return _send(recorder, bots, bot_id, params)
        if method in TRUE_METHODS:
            return {"ok": True, "result": True}
        return _fail(404, "Not Found")

    return api


async def _long_poll(bots: Bots, bot_id: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    offset, limit = _int(params.get("offset"), None), _int(params.get("limit"), 100) or 100
    wait = min(float(_int(params.get("timeout"), 0) or 0), LONG_POLL_CAP_S)
    deadline = time.monotonic() + wait
    while True:
        updates = bots.take(bot_id, offset, limit)
        if updates or time.monotonic() >= deadline:
            return updates
        await asyncio.sleep(0.1)


def _send(recorder: Recorder, bots: Bots, bot_id: int, params: dict[str, Any]) -> Any:
    chat_id, text = _int(params.get("chat_id"), None), params.get("text")
    if chat_id is None:
        return _fail(400, "Bad Request: chat not found")
    if not isinstance(text, str) or not text.strip():
        return _fail(400, "Bad Request: message text is empty")
    recorder.add("sent", {"bot": bot_id, "chat_id": chat_id, "text": text})
    chat = {"id": chat_id, "type": "private"}
    bot = {"id": bot_id, "is_bot": True, "first_name": f"Bot {bot_id}"}
    message = {"message_id": bots.message_id(), "date": int(time.time()), "chat": chat,
               "from": bot, "text": text}  # fmt: skip
    return {"ok": True, "result": message}
