"""An OpenAI-compatible chat-completions endpoint (`POST /v1/chat/completions`, `GET /v1/models`).

Shapes follow OpenAI's API reference: a bearer key in `Authorization`, `401 invalid_api_key`
for a key the service does not know, a `chat.completion` object, or with `"stream": true`
server-sent `chat.completion.chunk` events ending in `data: [DONE]` (and a usage chunk when
`stream_options.include_usage` asks for one). The reply is deterministic (`reply_text`), so a
test can recognise it in the chat it was sent to.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from fatctl.sandbox.world import fingerprint
from fatctl.sandbox.world.records import Recorder

REPLY_PREFIX = "stand-in model"


class ModelKeys:
    """The API keys the stand-in accepts (as a real provider knows only the keys it issued)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[str] = set()

    def add(self, key: str) -> None:
        with self._lock:
            self._keys.add(key)

    def knows(self, key: str) -> bool:
        with self._lock:
            return key in self._keys


def user_texts(messages: list[dict[str, Any]]) -> list[str]:
    """The text of every user message (content may be a string or a list of parts): OpenClaw
    sends the customer's words in one and its own context in another."""
    out = []
    for message in messages:
        content = message.get("content") if message.get("role") == "user" else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.append(" ".join(p.get("text", "") for p in content if isinstance(p, dict)))
    return out


def reply_text(model: str, user_text: str) -> str:
    """Deterministic: the model's name and a digest of what it was asked (every user message)."""
    digest = hashlib.sha256(user_text.encode()).hexdigest()[:12]
    return f"[{REPLY_PREFIX} {model}] answer {digest}"


def _error(status: int, message: str, code: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(body, status_code=status)


def router(recorder: Recorder, keys: ModelKeys) -> APIRouter:
    api = APIRouter()

    @api.get("/v1/models")
    def models(request: Request) -> Any:
        if not keys.knows(_bearer(request)):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        return {
            "object": "list",
            "data": [{"id": "stand-in", "object": "model", "owned_by": "sandbox"}],
        }

    @api.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        key = _bearer(request)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_json")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is a required property", "invalid_request")
        model = str(body.get("model", ""))
        text = "\n".join(user_texts(body["messages"]))
        reply = reply_text(model, text) if keys.knows(key) else ""
        recorder.add("model", {"key": fingerprint(key) if key else "", "model": model,
                               "user_text": text, "stream": bool(body.get("stream")),
                               "accepted": keys.knows(key), "reply": reply})  # fmt: skip
        if not keys.knows(key):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(_chunks(model, reply, usage), media_type="text/event-stream")
        return _completion(model, reply)

    return api


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _usage(reply: str) -> dict[str, int]:
    out = len(reply.split())
    return {"prompt_tokens": 10, "completion_tokens": out, "total_tokens": 10 + out}


def _completion(model: str, reply: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": reply},
            }
        ],
        "usage": _usage(reply),
    }


def _chunks(model: str, reply: str, usage: bool) -> Iterator[str]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}  # fmt: skip

    def event(choices: list[dict[str, Any]], **more: Any) -> str:
        return f"data: {json.dumps({**base, 'choices': choices, **more})}\n\n"

    yield event(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    for i, word in enumerate(reply.split(" ")):
        piece = word if i == 0 else f" {word}"
        yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if usage:
        yield event([], usage=_usage(reply))
    yield "data: [DONE]\n\n"
