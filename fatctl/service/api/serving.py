"""What an agent serves, over the API: its plan (`PATCH /v1/agents/{name}`), its channels, and
each channel's allowed senders (list, add, remove).

Each change is the CLI's (`services.serving.changes`) made through `services.serving.push`, as
`fatctl model set --plan`, `fatctl senders add|remove` make it: recorded and audited, and the
running box brought to it before the answer (an agent without a box yet only records it).
A channel's credentials are never read or shown here: adding a channel takes them on stdin
(`fatctl channels add`), and the lists carry kinds and sender ids only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from fatctl.errors import NotFound
from fatctl.service.api.paging import Limit, Page, page_of
from fatctl.service.api.routes import ERRORS, Reader, Writer
from fatctl.service.context import Runtime
from fatctl.services.common.layouts import files_layout
from fatctl.services.serving.changes import add_sender, remove_sender, set_model
from fatctl.services.serving.push import ChangeFn, push
from fatctl.serving import CHANNEL_SENDERS, ChannelKind
from fatctl.state import repo
from fatctl.state.db import session_scope

router = APIRouter(prefix="/v1", responses=ERRORS)
KindPath = Annotated[ChannelKind, Path(description="telegram, slack or whatsapp.")]


class PlanChange(BaseModel):
    plan: Literal["managed", "byok"]
    model: str | None = Field(
        default=None, description="provider/model, '' for the plan's default; absent: kept."
    )
    base_url: str | None = Field(default=None, description="Only for custom/<model>.")


class NewSender(BaseModel):
    sender: str = Field(
        description="The channel's sender id: Telegram user id, Slack member "
        "id, or +phone for WhatsApp.",
        min_length=1,
        max_length=320,
    )


def _push(request: Request, name: str, token: Any, change: ChangeFn) -> dict[str, Any]:
    rt: Runtime = request.app.state.runtime
    done = push(
        rt.db,
        rt.ring,
        rt.settings,
        name,
        f"token:{token.name}",
        change,
        layout=files_layout(rt.settings),
    )
    return {k: v for k, v in done.row().items() if k != "diff"}


@router.patch("/agents/{name}")
def change_plan(name: str, body: PlanChange, request: Request, token: Writer) -> dict[str, Any]:
    """Switch the agent's plan (managed: the platform's key pays; byok: the customer's); its
    model is kept unless given. The running box follows before the answer."""

    def change(session: Any, agent: Any) -> Any:
        model = agent.model if body.model is None else body.model
        base_url = agent.model_base_url if body.base_url is None else body.base_url
        return set_model(session, agent, model, base_url, body.plan)

    return {**_push(request, name, token, change), "plan": body.plan}


def _channels(rt: Runtime, name: str) -> list[dict[str, Any]]:
    """The agent's channels by kind, each with the senders its kind admits (404: no agent)."""
    with session_scope(rt.db) as session:
        agent = repo.get_agent(session, name)
        senders = repo.senders(session, agent)
        rows = []
        for channel in sorted(repo.channels(session, agent), key=lambda c: c.kind):
            wanted = CHANNEL_SENDERS[ChannelKind(channel.kind)].value
            allowed = sorted(s.value for s in senders if s.kind == wanted)
            rows.append(
                {
                    "kind": channel.kind,
                    "sender_kind": wanted,
                    "senders": allowed,
                    "added": channel.created_at.isoformat(),
                }
            )
    return rows


def _channel(rt: Runtime, name: str, kind: ChannelKind) -> dict[str, Any]:
    found = [c for c in _channels(rt, name) if c.get("kind") == kind.value]
    if not found:
        raise NotFound(f"agent {name} has no {kind.value} channel")
    return found[0]


@router.get("/agents/{name}/channels", response_model=Page)
def list_channels(
    name: str, request: Request, token: Reader, limit: Limit = 50, cursor: str = ""
) -> Page:
    """The agent's channels and who each admits (never a token)."""
    rows = _channels(request.app.state.runtime, name)
    return page_of(rows, lambda r: str(r["kind"]), cursor, limit, lambda r: r)


@router.get("/agents/{name}/channels/{kind}/senders", response_model=Page)
def list_senders(
    name: str,
    kind: KindPath,
    request: Request,
    token: Reader,
    limit: Limit = 50,
    cursor: str = "",
) -> Page:
    """The senders the channel admits, by id."""
    found = _channel(request.app.state.runtime, name, kind)
    return page_of(found["senders"], str, cursor, limit, lambda s: {"sender": s})


@router.post("/agents/{name}/channels/{kind}/senders", status_code=201)
def allow_sender(
    name: str, kind: KindPath, body: NewSender, request: Request, token: Writer
) -> dict[str, Any]:
    """Admit a sender on the channel (again: nothing changes); the box follows."""
    _channel(request.app.state.runtime, name, kind)
    sender_kind = CHANNEL_SENDERS[kind].value
    done = _push(request, name, token, lambda s, a: add_sender(s, a, body.sender, sender_kind))
    return {**done, "channel": kind.value}


@router.delete("/agents/{name}/channels/{kind}/senders/{sender}")
def remove_channel_sender(
    name: str, kind: KindPath, sender: str, request: Request, token: Writer
) -> dict[str, Any]:
    """Stop admitting a sender on the channel (404 when it was not admitted)."""
    _channel(request.app.state.runtime, name, kind)
    sender_kind = CHANNEL_SENDERS[kind].value
    done = _push(request, name, token, lambda s, a: remove_sender(s, a, sender, sender_kind))
    return {**done, "channel": kind.value}
