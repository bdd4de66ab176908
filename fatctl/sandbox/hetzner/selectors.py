"""Hetzner label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`;
a comma joins terms with AND. Pure; raises ValueError on a malformed selector."""

from __future__ import annotations

import re
from collections.abc import Callable

Term = Callable[[dict[str, str]], bool]

_KEY = r"[A-Za-z0-9][A-Za-z0-9._/-]*"
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s+\(([^()]*)\)$")
_CMP = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$")
_HAS = re.compile(rf"^(!?)\s*({_KEY})$")


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms, depth, current = [], 0, ""
    for ch in selector:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise ValueError("unbalanced parentheses")
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    if depth:
        raise ValueError("unbalanced parentheses")
    return [*terms, current]


def _term(text: str) -> Term:
    text = text.strip()
    if m := _SET.fullmatch(text):
        key, op, raw = m.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _CMP.fullmatch(text):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _HAS.fullmatch(text):
        negate, key = m.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ValueError(f"cannot parse label selector term {text!r}")


def parse(selector: str) -> Callable[[dict[str, str]], bool]:
    terms = [_term(t) for t in _split(selector)]
    return lambda labels: all(term(labels) for term in terms)


def matches(selector: str | None, labels: dict[str, str] | None) -> bool:
    if not selector:
        return True
    return parse(selector)(labels or {})
