"""Checks of one answer against Cloudflare's documented v4 envelope and an SDK response model.

The envelope (developers.cloudflare.com/fundamentals/api/how-to/make-api-calls): every answer is
`{"success": bool, "errors": [...], "messages": [...], "result": ...}`; list endpoints add
`result_info` {page, per_page, count, total_count, total_pages}. An error item is
`{"code": <int>, "message": <str>}` (the SDK's `shared.ResponseInfo`: `code: int`,
`message: str`, optional `documentation_url`, `source`), and a wrapper error names its causes in
`error_chain` (items of the same shape).
"""

from __future__ import annotations

from typing import Any

import httpx
import pydantic
from cloudflare.types.shared import ResponseInfo

ENVELOPE = {"success", "errors", "messages", "result"}
RESULT_INFO = {"page", "per_page", "count", "total_count", "total_pages"}
ERROR_ITEM = {"code", "message", "documentation_url", "source", "error_chain"}


def ok(answer: httpx.Response, listing: bool = False) -> Any:
    """The `result` of a successful answer, after checking its envelope."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == ENVELOPE | ({"result_info"} if listing else set()), body.keys()
    assert (body["success"], body["errors"], body["messages"]) == (True, [], [])
    if listing:
        info = body["result_info"]
        assert set(info) == RESULT_INFO and all(isinstance(info[k], int) for k in RESULT_INFO)
        assert info["count"] == len(body["result"])
    return body["result"]


def failed(answer: httpx.Response, status: int) -> list[dict[str, Any]]:
    """The `errors` of a failed answer, each a valid `ResponseInfo`, after checking the rest."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    assert set(body) == ENVELOPE and body["success"] is False and body["result"] is None
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) <= ERROR_ITEM, error
        ResponseInfo.model_validate(error)
        for cause in error.get("error_chain", []):
            ResponseInfo.model_validate(cause)
    return list(body["errors"])


def conforms(model: type[pydantic.BaseModel], item: dict[str, Any]) -> None:
    """Valid for the SDK's model, with every field it requires, and no field it does not know
    (an invented or removed field is a difference from the real API)."""
    model.model_validate(item)
    fields = model.model_fields
    names = {f.alias or name for name, f in fields.items()}
    required = {f.alias or name for name, f in fields.items() if f.is_required()}
    assert required <= set(item), (model.__name__, required - set(item))
    assert set(item) <= names, (model.__name__, set(item) - names)
