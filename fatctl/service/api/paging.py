"""Pages of a list: opaque cursors (the last key shown, base64url) and one page's shape.

Every list of the API pages the same way: `limit` (1..200) and `cursor` in the query, the
items and `next_cursor` (empty at the end) in the answer; keyset, so a page never repeats or
skips an item while others are added.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from fatctl.errors import BadInput

MAX_PAGE = 200
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
T = TypeVar("T")


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str = Field(description="Pass as `cursor` for the next page; empty at the end.")


def encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode(cursor: str) -> str:
    if not cursor:
        return ""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadInput("cursor is not one this API gave out") from None


def page_of(
    items: Sequence[T],
    key: Callable[[T], str],
    cursor: str,
    limit: int,
    row: Callable[[T], dict[str, Any]],
) -> Page:
    """A page of `items` (already in `key` order) after the cursor's key."""
    after = decode(cursor)
    rest = [item for item in items if key(item) > after] if after else list(items)
    shown = rest[:limit]
    more = len(rest) > limit
    return Page(items=[row(i) for i in shown], next_cursor=encode(key(shown[-1])) if more else "")
