"""Record the HTTP exchanges the hcloud SDK (and so fatctl) has with the emulator, at the
`requests.Session.send` boundary every SDK call goes through, and check each one against the
OpenAPI document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.contract.hetzner import openapi


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # without the API's /v1 prefix, as the document names paths
    request: Any
    status: int
    response: Any
    headers: dict[str, str]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


def _json(raw: bytes | str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def record(monkeypatch: pytest.MonkeyPatch, base_url: str) -> list[Exchange]:
    """Start recording every exchange with `base_url`; the list fills as calls are made."""
    seen: list[Exchange] = []
    prefix = urlsplit(base_url).path.rstrip("/")
    original = requests.Session.send

    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        response = original(self, request, **kwargs)
        url = urlsplit(request.url or "")
        if request.url and request.url.startswith(base_url):
            seen.append(
                Exchange(
                    method=request.method or "GET",
                    path=url.path[len(prefix) :],
                    request=_json(request.body),
                    status=response.status_code,
                    response=_json(response.content),
                    headers=dict(response.headers),
                )
            )
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    return seen


def violations(exchange: Exchange, *, check_request: bool = True) -> list[str]:
    """What in one exchange the document does not allow: an undocumented operation or status,
    an error code under the wrong status, a request or response body off its schema.
    `check_request=False` for a request broken on purpose (invalid JSON)."""
    op = openapi.operation(exchange.method, exchange.path)
    problems = (
        [f"request {p}" for p in openapi.errors(op.request_schema(), exchange.request)]
        if check_request
        else []
    )
    if exchange.status < 400 and exchange.status not in op.success_statuses():
        problems.append(f"status {exchange.status} is not one of {sorted(op.success_statuses())}")
    if exchange.status >= 400:
        code = (exchange.response or {}).get("error", {}).get("code")
        allowed = op.error_statuses().get(code)
        if allowed is None or exchange.status not in allowed:
            problems.append(f"error {code!r} with status {exchange.status}, documented {allowed}")
    response = op.response(exchange.status)
    if response is None:
        return [*problems, f"status {exchange.status} undocumented"]
    schema = (response.get("content") or {}).get("application/json", {}).get("schema")
    problems += [f"response {p}" for p in openapi.errors(schema, exchange.response)]
    problems += [f"undocumented field {f}" for f in openapi.undocumented(schema, exchange.response)]
    return problems


def check_all(exchanges: list[Exchange]) -> dict[str, list[str]]:
    """Violations by exchange, for an assertion that names every one."""
    found: dict[str, list[str]] = {}
    for exchange in exchanges:
        if problems := violations(exchange):
            found.setdefault(str(exchange), []).extend(sorted(set(problems)))
    return found


def assert_conforms(exchanges: list[Exchange]) -> None:
    found = check_all(exchanges)
    lines = [f"{where}: {problem}" for where, problems in found.items() for problem in problems]
    assert not lines, "exchanges off the document:\n" + "\n".join(lines)
