"""`/v1/agents`: create (202, the provision workflow started), list (a page), get, delete.

Handlers are plain functions (FastAPI runs them in its thread pool): the services they call
block on the database and on DBOS's enqueue.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fatctl.errors import FatctlError
from fatctl.service import agents, idempotency
from fatctl.service.api.auth import require
from fatctl.service.api.paging import decode, encode
from fatctl.service.tokens import TokenInfo
from fatctl.services.agents.records import NewAgent


class ErrorDetail(BaseModel):
    code: int = Field(description="The CLI's exit code for this failure: 1 failed, 2 bad input.")
    kind: str = Field(description="bad_input, not_found, conflict, unauthorized, forbidden, ...")
    message: str = Field(description="One line, never a secret.")


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in ((400, "Bad input"), (401, "No live token"), (403, "Scope missing"),
                         (404, "Not found"), (409, "Conflict or busy"),
                         (422, "Idempotency-Key reused with another body"),
                         (502, "A cloud or a box failed"))
}  # fmt: skip
router = APIRouter(prefix="/v1", responses=ERRORS)
NO_BACKUP_DOC = (
    "Destroy without the pre-destroy state backup (audited as skipped, like the "
    "CLI's --no-backup): for a box that cannot be reached; its state is lost."
)
Reader = Annotated[TokenInfo, Depends(require("agents:read"))]
Writer = Annotated[TokenInfo, Depends(require("agents:write"))]
Admin = Annotated[TokenInfo, Depends(require("fleet:admin"))]  # rollouts and the fleet


class CreateAgent(BaseModel):
    name: str = Field(description="The agent's name: a DNS label, 3-40 characters.")
    owner_email: str
    plan: str = "managed"
    server_type: str | None = None
    location: str | None = None
    image: str | None = None


class Accepted(BaseModel):
    agent: dict[str, str]
    workflow_id: str
    status_url: str


class AgentPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str = Field(description="Pass as `cursor` for the next page; empty at the end.")


def _request(body: CreateAgent, request: Request) -> NewAgent:
    s = request.app.state.runtime.settings
    return NewAgent(body.name, body.owner_email, body.plan, body.server_type or s.server_type,
                    body.location or s.location, body.image or s.image,
                    s.runtime_version).validated()  # fmt: skip


@router.post("/agents", status_code=202, response_model=Accepted)
def create_agent(
    body: CreateAgent,
    request: Request,
    token: Writer,
    idempotency_key: Annotated[str | None, Header(max_length=idempotency.MAX_KEY_LENGTH)] = None,
) -> JSONResponse:
    """Record the agent and start its provision workflow; answers at once (202)."""
    rt = request.app.state.runtime
    new = _request(body, request)  # bad input: 400 before the key is claimed
    if idempotency_key is not None:
        sha = idempotency.fingerprint(body.model_dump())
        stored = idempotency.claim(rt.db, token.id, idempotency_key, sha)
        if stored is not None:
            return _accepted(stored)
    try:
        started = agents.create(rt, new, f"token:{token.name}")
    except FatctlError:
        if idempotency_key is not None:
            idempotency.drop(rt.db, token.id, idempotency_key)
        raise
    answer = _started(started)
    if idempotency_key is not None:
        idempotency.settle(rt.db, token.id, idempotency_key, answer, started.name)
    return _accepted(answer)


def _accepted(stored: idempotency.Stored) -> JSONResponse:
    url = str(stored.response.get("status_url", ""))
    return JSONResponse(stored.response, status_code=stored.status_code, headers={"Location": url})


@router.get("/agents", response_model=AgentPage)
def list_agents(
    request: Request,
    token: Reader,
    limit: Annotated[int, Query(ge=1, le=agents.MAX_PAGE)] = 50,
    cursor: str = "",
) -> AgentPage:
    """Agents by name, a page at a time (keyset: no agent repeated or skipped)."""
    items, last = agents.page(request.app.state.runtime, decode(cursor), limit)
    return AgentPage(items=items, next_cursor=encode(last) if last else "")


@router.get("/agents/{name}")
def get_agent(name: str, request: Request, token: Reader) -> dict[str, Any]:
    """The agent's record and its workflows' status."""
    return agents.describe(request.app.state.runtime, name)


@router.delete("/agents/{name}", status_code=202, response_model=Accepted)
def delete_agent(
    name: str,
    request: Request,
    token: Writer,
    release_ips: bool = False,
    no_backup: Annotated[bool, Query(description=NO_BACKUP_DOC)] = False,
) -> JSONResponse:
    """Start the destroy workflow (primary IPs kept unless `release_ips`); answers at once.
    A destroy whose workflow failed answers 409 with the reason: a box that cannot be backed
    up first is destroyed only when asked again with `no_backup=true`."""
    started = agents.destroy(request.app.state.runtime, name, f"token:{token.name}",
                             release_ips=release_ips, no_backup=no_backup)  # fmt: skip
    return _accepted(_started(started))


def _started(started: agents.Started) -> idempotency.Stored:
    body = {
        "agent": {"name": started.name, "id": started.agent_id},
        "workflow_id": started.workflow_id,
        "status_url": f"/v1/agents/{started.name}",
    }
    return idempotency.Stored(202, body)
