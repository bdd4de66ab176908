"""The `Link` header (RFC 8288, formerly RFC 5988) that Hetzner sends on every paginated list,
beside the body's `meta.pagination`: "Responses contain a `Link` header with pagination
information" (docs.hetzner.cloud, "Pagination"), with `rel` values prev, next and last.

The routes build `meta.pagination`; this wrapper reads it back from the JSON body and adds the
header, so the one place that knows the page numbers stays `listing.paginate`."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def link_header(url: URL, pagination: dict[str, Any]) -> str | None:
    """`<url?page=N&per_page=M>; rel="..."` for each of prev, next and last that exists."""
    per_page = pagination.get("per_page")
    targets = (
        ("prev", pagination.get("previous_page")),
        ("next", pagination.get("next_page")),
        ("last", pagination.get("last_page")),
    )
    parts = [
        f'<{url.include_query_params(page=page, per_page=per_page)}>; rel="{rel}"'
        for rel, page in targets
        if page is not None
    ]
    return ", ".join(parts) or None


def _pagination(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    meta = doc.get("meta") if isinstance(doc, dict) else None
    found = meta.get("pagination") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else None


class PaginationLinks:
    """Holds back a GET response's start until its (single) body message is known, then adds
    `Link` when the body is a page of a list. The emulator's responses are never streamed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        url = Request(scope).url
        held: list[Message] = []

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                held.append(message)
                return
            if held and message["type"] == "http.response.body":
                start = held.pop()
                pagination = _pagination(message.get("body", b""))
                header = link_header(url, pagination) if pagination else None
                if header and start["status"] == 200:
                    start["headers"] = [*start.get("headers", []), (b"link", header.encode())]
                await send(start)
            await send(message)

        await self.app(scope, receive, wrapped)
