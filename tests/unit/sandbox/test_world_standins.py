"""The outside world's stand-ins refuse what the real services refuse and record what the
boxes send them. Shapes quoted from the providers' references:

- OpenAI: "Authorization: Bearer OPENAI_API_KEY"; an unknown key is HTTP 401 with
  `{"error": {"code": "invalid_api_key", ...}}`; streamed responses are `data: {...}` server-sent
  events of `chat.completion.chunk` objects, ending with `data: [DONE]`.
- Telegram Bot API: "All queries must be made using UTF-8 ... https://api.telegram.org/bot<token>/
  METHOD_NAME"; "The response contains a JSON object, which always has a Boolean field 'ok'";
  an invalid token is 401 Unauthorized; getUpdates' `offset` "must be greater by one than the
  highest among the identifiers of previously received updates ... all previous updates will be
  forgotten".
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from fatctl.sandbox.world import fingerprint
from fatctl.sandbox.world.app import World

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"


@pytest.fixture
def world() -> World:
    return World()


def test_model_refuses_unknown_keys_and_records_fingerprints(world: World) -> None:
    api, admin = TestClient(world.public()), TestClient(world.admin())
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    refused = api.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer no"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert api.post("/v1/chat/completions", json=body).status_code == 401
    admin.post("/model/keys", json={"key": "sk-good"})
    ok = api.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-good"})
    assert ok.status_code == 200 and ok.json()["object"] == "chat.completion"
    records = admin.get("/records/model").json()
    assert [r["key"] for r in records] == [fingerprint("no"), "", fingerprint("sk-good")]
    assert "sk-good" not in json.dumps(records)
    assert records[-1]["reply"] == ok.json()["choices"][0]["message"]["content"]


def test_model_streams_chunks_that_add_up_to_the_reply(world: World) -> None:
    api, admin = TestClient(world.public()), TestClient(world.admin())
    admin.post("/model/keys", json={"key": "sk-good"})
    parts = [{"type": "text", "text": "hi"}]
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": parts}]}  # fmt: skip
    text = api.post("/v1/chat/completions", json=body,
                    headers={"Authorization": "Bearer sk-good"}).text  # fmt: skip
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content = "".join(ch["delta"].get("content", "") for c in chunks for ch in c["choices"])
    assert content == admin.get("/records/model").json()[-1]["reply"]
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_telegram_refuses_unknown_tokens_and_methods(world: World) -> None:
    api, admin = TestClient(world.public()), TestClient(world.admin())
    assert api.get(f"/bot{TOKEN}/getMe").json() == {
        "ok": False, "error_code": 401, "description": "Unauthorized"}  # fmt: skip
    assert admin.post("/telegram/bots", json={"token": "nope"}).status_code == 400
    admin.post("/telegram/bots", json={"token": TOKEN})
    assert api.get(f"/bot{TOKEN}/getMe").json()["result"]["id"] == 123456789
    assert api.post(f"/bot{TOKEN}/noSuchMethod").status_code == 404
    empty = api.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": 1, "text": " "})
    assert empty.status_code == 400 and not empty.json()["ok"]


def test_telegram_updates_are_confirmed_by_offset_and_replies_recorded(world: World) -> None:
    api, admin = TestClient(world.public()), TestClient(world.admin())
    admin.post("/telegram/bots", json={"token": TOKEN})
    message = {"bot_id": 123456789, "from_id": 42, "text": "hello"}
    first = admin.post("/telegram/updates", json=message).json()
    got = api.post(f"/bot{TOKEN}/getUpdates", json={"timeout": 0}).json()["result"]
    assert [u["update_id"] for u in got] == [first["update_id"]]
    assert got[0]["message"]["from"]["id"] == 42 and got[0]["message"]["text"] == "hello"
    again = api.post(f"/bot{TOKEN}/getUpdates", json={"offset": first["update_id"]}).json()
    assert len(again["result"]) == 1  # not confirmed yet: offset equal to the id keeps it
    done = api.post(f"/bot{TOKEN}/getUpdates", data={"offset": str(first["update_id"] + 1)})
    assert done.json()["result"] == []
    api.post(f"/bot{TOKEN}/sendMessage", json={"chat_id": "42", "text": "hi back"})
    assert admin.get("/records/sent").json()[0] | {"at": 0} == {
        "bot": 123456789, "chat_id": 42, "text": "hi back", "at": 0}  # fmt: skip
