"""List endpoints: `name` and `label_selector` filters, `sort`, and page-based pagination with
the `meta.pagination` block the SDK follows (`next_page` null on the last page)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fatctl.sandbox.hetzner import selectors
from fatctl.sandbox.hetzner.errors import invalid

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 50
_SORTABLE = ("id", "name", "created", "command", "status", "started", "finished")


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, "must be an integer") from None
    if value < 1:
        raise invalid(name, "must be >= 1")
    return value


def sort_items(items: list[dict[str, Any]], sorts: Sequence[str]) -> list[dict[str, Any]]:
    # apply the keys in reverse so the first one given wins (stable sort)
    for spec in reversed(list(sorts)):
        field, _, direction = spec.partition(":")
        if field not in _SORTABLE or direction not in ("", "asc", "desc"):
            raise invalid("sort", f"unsupported sort {spec!r}")
        items = sorted(
            items,
            key=lambda o: (o.get(field) is None, o.get(field) or 0),
            reverse=direction == "desc",
        )
    return items


def paginate(
    items: list[dict[str, Any]], query: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    page = _int_param(query, "page", 1)
    per_page = min(_int_param(query, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    total = len(items)
    last = max(1, math.ceil(total / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    meta = {
        "pagination": {
            "page": page,
            "per_page": per_page,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None,
            "last_page": last,
            "total_entries": total,
        }
    }
    return chunk, meta


def filtered(
    items: list[dict[str, Any]], query: Mapping[str, str], sorts: Sequence[str] = ()
) -> list[dict[str, Any]]:
    name = query.get("name")
    if name is not None:
        items = [o for o in items if o.get("name") == name]
    selector = query.get("label_selector")
    if selector:
        try:
            match = selectors.parse(selector)
        except ValueError as exc:
            raise invalid("label_selector", str(exc)) from None
        items = [o for o in items if match(o.get("labels") or {})]
    return sort_items(items, sorts or ["id"])


def list_response(
    key: str,
    items: list[dict[str, Any]],
    query: Mapping[str, str],
    sorts: Sequence[str] = (),
    render: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Filter, sort and cut a page of stored documents; `render` turns only that page into
    API objects (rendering every server before paginating made big lists slow)."""
    chunk, meta = paginate(filtered(items, query, sorts), query)
    return {key: render(chunk) if render else chunk, "meta": meta}
