"""The API's plan, channel and sender endpoints, on SQLite and PostgreSQL, over the CLI's own
serving changes: an agent without a box yet (state `requested`) only records them, so what is
checked is the database, the answers, and that a refusal leaves every row as it was.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.service.conftest import Service

TOKEN = "123456789:AAE" + "x" * 32  # a Telegram bot token's shape; must never come back


def seed(svc: Service, name: str = "alpha", plan: str = "managed") -> None:
    """An agent with no box yet and a Telegram channel whose token is sealed."""
    from fatctl.sensitive import Sensitive
    from fatctl.state import secret_store
    from fatctl.state.db import session_scope
    from fatctl.state.models import Agent, Channel, Owner

    with session_scope(svc.plane.db) as session:
        owner = Owner(email=f"{name}@example.com", plan=plan)
        session.add(owner)
        session.flush()
        agent = Agent(name=name, agent_id=f"id-{name}", owner_id=owner.id or 0,
                      state="requested", server_type="cx23", location="fsn1",
                      image="debian-12", runtime_version="2026.9.6")  # fmt: skip
        session.add(agent)
        session.flush()
        session.add(Channel(agent_pk=agent.id or 0, kind="telegram"))
        secret_store.put(session, svc.plane.ring, agent_pk=agent.id,
                         name="channel:telegram:bot-token", value=Sensitive(TOKEN))  # fmt: skip


def state(svc: Service, name: str = "alpha") -> dict[str, Any]:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(svc.plane.db) as session:
        agent = repo.get_agent(session, name)
        return {"plan": repo.owner_of(session, agent).plan, "model": agent.model,
                "senders": sorted((s.kind, s.value) for s in repo.senders(session, agent)),
                "channels": sorted(c.kind for c in repo.channels(session, agent))}  # fmt: skip


def test_patch_switches_the_plan_and_keeps_the_model(service: Service) -> None:
    seed(service)
    answer = service.client.patch("/v1/agents/alpha", json={"plan": "byok"},
                                  headers=service.headers("writer"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["plan"], body["applied"], body["action"]) == ("byok", "recorded", "model.set")
    assert state(service)["plan"] == "byok"

    chosen = service.client.patch(
        "/v1/agents/alpha", json={"plan": "byok", "model": "anthropic/claude-sonnet-4-5"},
        headers=service.headers("writer"))  # fmt: skip
    assert chosen.status_code == 200, chosen.text
    back = service.client.patch("/v1/agents/alpha", json={"plan": "managed"},
                                headers=service.headers("writer"))  # fmt: skip
    assert back.status_code == 200
    assert state(service)["plan"] == "managed"
    assert state(service)["model"] == "anthropic/claude-sonnet-4-5"


@pytest.mark.parametrize(
    ("who", "body", "path", "status", "kind"),
    [
        (None, {"plan": "byok"}, "/v1/agents/alpha", 401, "unauthorized"),
        ("reader", {"plan": "byok"}, "/v1/agents/alpha", 403, "forbidden"),
        ("writer", {"plan": "gold"}, "/v1/agents/alpha", 400, "bad_input"),
        ("writer", {}, "/v1/agents/alpha", 400, "bad_input"),
        ("writer", {"plan": "byok", "model": "nowhere/x"}, "/v1/agents/alpha", 400, "bad_input"),
        ("writer", {"plan": "byok"}, "/v1/agents/nobody", 404, "not_found"),
    ],
)
def test_patch_refusals_change_nothing(
    service: Service, who: str | None, body: dict[str, Any], path: str, status: int, kind: str
) -> None:
    seed(service)
    before = state(service)
    headers = service.headers(who) if who else {}
    answer = service.client.patch(path, json=body, headers=headers)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["kind"] == kind and "\n" not in error["message"]
    assert state(service) == before


def test_channels_list_senders_and_never_a_token(service: Service) -> None:
    seed(service)
    w, r = service.headers("writer"), service.headers("reader")
    url = "/v1/agents/alpha/channels/telegram/senders"
    for sender in ("42", "7", "1234567"):
        added = service.client.post(url, json={"sender": sender}, headers=w)
        assert added.status_code == 201, added.text
        assert added.json()["channel"] == "telegram" and added.json()["applied"] == "recorded"
    again = service.client.post(url, json={"sender": "42"}, headers=w)
    assert again.status_code == 201  # admitting twice changes nothing
    assert state(service)["senders"] == [("telegram", "1234567"), ("telegram", "42"),
                                         ("telegram", "7")]  # fmt: skip

    channels = service.client.get("/v1/agents/alpha/channels", headers=r)
    assert channels.status_code == 200, channels.text
    (channel,) = channels.json()["items"]
    assert channel["kind"] == "telegram" and channel["senders"] == ["1234567", "42", "7"]
    assert TOKEN not in channels.text and "AAE" not in channels.text

    first = service.client.get(url, params={"limit": 2}, headers=r).json()
    assert [i["sender"] for i in first["items"]] == ["1234567", "42"] and first["next_cursor"]
    rest = service.client.get(url, params={"limit": 2, "cursor": first["next_cursor"]},
                              headers=r).json()  # fmt: skip
    assert [i["sender"] for i in rest["items"]] == ["7"] and rest["next_cursor"] == ""

    gone = service.client.delete(f"{url}/42", headers=w)
    assert gone.status_code == 200, gone.text
    assert state(service)["senders"] == [("telegram", "1234567"), ("telegram", "7")]


@pytest.mark.parametrize(
    ("method", "path", "body", "who", "status"),
    [
        ("post", "/v1/agents/alpha/channels/telegram/senders", {"sender": "42"}, None, 401),
        ("post", "/v1/agents/alpha/channels/telegram/senders", {"sender": "42"}, "reader", 403),
        ("post", "/v1/agents/alpha/channels/telegram/senders", {"sender": "bob"}, "writer", 400),
        ("post", "/v1/agents/alpha/channels/fax/senders", {"sender": "42"}, "writer", 400),
        ("post", "/v1/agents/alpha/channels/slack/senders", {"sender": "U123ABC"}, "writer", 404),
        ("post", "/v1/agents/nobody/channels/telegram/senders", {"sender": "42"}, "writer", 404),
        ("delete", "/v1/agents/alpha/channels/telegram/senders/99", None, "writer", 404),
        ("get", "/v1/agents/alpha/channels", None, None, 401),
        ("get", "/v1/agents/alpha/channels", None, "admin", 200),  # fleet:admin implies all
        ("get", "/v1/agents/nobody/channels", None, "reader", 404),
        ("get", "/v1/agents/alpha/channels/telegram/senders?cursor=_w", None, "reader", 400),
    ],
)
def test_sender_refusals_change_nothing(
    service: Service, method: str, path: str, body: Any, who: str | None, status: int
) -> None:
    seed(service)
    before = state(service)
    headers = service.headers(who) if who else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    answer = getattr(service.client, method)(path, **kwargs)
    assert answer.status_code == status, answer.text
    if status >= 400:
        assert "\n" not in answer.json()["error"]["message"]
    assert state(service) == before
