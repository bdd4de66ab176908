"""DNS record rules and list filters, as pure functions over record dicts: content checks per
type, name expansion inside the zone, TTL bounds, comment and tag formats, and the v4 list
filters (`name`, `type`, `content`, `comment`, `tag` with .exact/.contains/... variants)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from fatctl.sandbox.cloudflare.errors import bad_request

TYPES = {"A", "AAAA", "CNAME", "TXT", "MX", "NS", "CAA", "SRV"}
PROXIABLE = {"A", "AAAA", "CNAME"}
COMMENT_MAX = 100
Record = dict[str, Any]


def fqdn(name: str, zone: str) -> str:
    name = name.rstrip(".").lower()
    if name in ("@", "", zone):
        return zone
    return name if name.endswith("." + zone) else f"{name}.{zone}"


def check_content(rtype: str, content: str) -> None:
    try:
        if rtype == "A":
            ipaddress.IPv4Address(content)
        elif rtype == "AAAA":
            ipaddress.IPv6Address(content)
    except ValueError:
        family = "IPv4" if rtype == "A" else "IPv6"
        raise bad_request(
            9005 if rtype == "A" else 9006,
            f"Content for {rtype} record must be a valid {family} address.",
        ) from None
    if not content:
        raise bad_request(9007, "Content is required.")


def check_ttl(ttl: Any) -> int:
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not (ttl == 1 or 60 <= ttl <= 86400):
        raise bad_request(9009, "TTL must be between 60 and 86400 seconds, or 1 for Automatic.")
    return ttl


def check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise bad_request(9101, "tags must be a list of 'name:value' strings.")
    return list(tags)


def check_comment(comment: Any) -> str | None:
    if comment is not None and (not isinstance(comment, str) or len(comment) > COMMENT_MAX):
        raise bad_request(9102, f"comment must be a string of at most {COMMENT_MAX} characters.")
    return comment


def _text(op: str, wanted: str) -> Callable[[str | None], bool]:
    wanted = wanted.lower()
    tests: dict[str, Callable[[str], bool]] = {
        "exact": lambda v: v == wanted,
        "contains": lambda v: wanted in v,
        "startswith": lambda v: v.startswith(wanted),
        "endswith": lambda v: v.endswith(wanted),
    }
    if op in ("present", "absent"):
        return lambda v: (v is not None and v != "") == (op == "present")
    if op not in tests:
        raise bad_request(9100, f"unsupported filter operator {op!r}")
    return lambda v: v is not None and tests[op](v.lower())


def _tag(op: str, wanted: str) -> Callable[[Record], bool]:
    key, _, value = wanted.lower().partition(":")

    def tag_values(record: Record) -> dict[str, str]:
        pairs = (t.lower().partition(":") for t in record.get("tags") or [])
        return {k: v for k, _, v in pairs}

    if op in ("present", "absent") or (op == "exact" and not value):
        want = op != "absent"
        return lambda r: (key in tag_values(r)) == want
    test = _text(op, value)
    return lambda r: key in tag_values(r) and test(tag_values(r)[key])


def _field_filter(field: str, op: str, raw: str) -> Callable[[Record], bool]:
    if field == "type":
        return lambda r: r["type"] == raw.upper()
    if field == "proxied":
        return lambda r: r["proxied"] == (raw.lower() == "true")
    test = _text(op or "exact", raw)
    return lambda r: test(r.get(field))


def build_filters(
    query: Mapping[str, str], tag_values: list[tuple[str, str]]
) -> tuple[list[Callable[[Record], bool]], list[Callable[[Record], bool]]]:
    """(record filters, tag filters) from the query; `match`/`tag_match` combine each group."""
    filters = []
    for key, raw in query.items():
        field, _, op = key.partition(".")
        if field in ("name", "content", "comment", "type", "proxied"):
            filters.append(_field_filter(field, op, raw))
    tags = [_tag(op or "exact", raw) for op, raw in tag_values]
    return filters, tags


def matches(record: Record, filters: list, tags: list, match_all: bool, tags_all: bool) -> bool:
    combine = all if match_all else any
    ok = combine(f(record) for f in filters) if filters else True
    tag_combine = all if tags_all else any
    return ok and (tag_combine(t(record) for t in tags) if tags else True)
