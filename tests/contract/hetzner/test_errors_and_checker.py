"""The emulator's error codes against the document's tables, raw error exchanges through the
checker, and the checker itself refusing what the document does not allow (so a green contract
suite means something)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fatctl.sandbox.hetzner import catalog
from fatctl.sandbox.hetzner.errors import STATUS_OF_CODE
from tests.contract.hetzner import openapi
from tests.contract.hetzner.recorder import Exchange, violations


def _documented_statuses() -> dict[str, set[int]]:
    """Every (code, status) pair in the general "Error Codes" table and in each operation's
    "Operation specific errors"."""
    table: dict[str, set[int]] = {}
    for template, ops in openapi.document()["paths"].items():
        for method, spec in ops.items():
            if isinstance(spec, dict) and "responses" in spec:
                op = openapi.Operation(method.upper(), template, spec)
                for code, statuses in op.error_statuses().items():
                    table.setdefault(code, set()).update(statuses)
    return table


def test_every_emulator_error_code_has_its_documented_status() -> None:
    """The document, "Errors": "| `422` | `invalid_input` | Error while parsing or processing
    the input. |" and the rest of the table; operations add their own ("| `422` |
    `server_not_stopped` |"). The emulator sends no code the document does not name."""
    documented = _documented_statuses()
    wrong = {
        code: (status, sorted(documented.get(code, ())))
        for code, status in STATUS_OF_CODE.items()
        if status not in documented.get(code, ())
    }
    assert wrong == {}


def _exchange(method: str, path: str, response: httpx.Response, body: Any = None) -> Exchange:
    return Exchange(method, path, body, response.status_code, response.json(), {})


@pytest.fixture
def api(hetzner_emulator: Any) -> Any:
    headers = {"Authorization": f"Bearer {hetzner_emulator.token}"}
    with httpx.Client(base_url=hetzner_emulator.url, headers=headers, timeout=30) as client:
        yield client


def test_raw_error_answers_fit_the_document(api: httpx.Client, hetzner_emulator: Any) -> None:
    """Broken JSON (`json_error`, 400), a wrong token (`unauthorized`, 401), an unknown id
    (`not_found`, 404), the removed project-wide action list (`deprecated_api_endpoint`, 410:
    "This functionality was deprecated in July 2023 and removed on 30 January 2025"), an
    injected outage (`unavailable`, 503) and an exhausted budget (`rate_limit_exceeded`, 429):
    each status documented for its code and each body fitting the 4xx/5xx schema."""
    broken = api.post("/servers", content=b"{nope", headers={"Content-Type": "application/json"})
    stranger = httpx.get(f"{hetzner_emulator.url}/servers", headers={"Authorization": "Bearer x"})
    answers = [
        _exchange("POST", "/servers", broken),
        _exchange("GET", "/servers", stranger),
        _exchange("GET", "/servers/99", api.get("/servers/99")),
        _exchange("GET", "/actions", api.get("/actions")),
    ]
    hetzner_emulator.set_faults(error_rate=1.0, error_statuses=[503])
    answers.append(_exchange("GET", "/locations", api.get("/locations")))
    hetzner_emulator.clear_faults()
    hetzner_emulator.set_rate_limit(1, 3600.0)
    api.get("/locations")
    answers.append(_exchange("GET", "/locations", api.get("/locations")))
    assert [(a.status, a.response["error"]["code"]) for a in answers] == [
        (400, "json_error"),
        (401, "unauthorized"),
        (404, "not_found"),
        (410, "deprecated_api_endpoint"),
        (503, "unavailable"),
        (429, "rate_limit_exceeded"),
    ]
    off = {str(a): violations(a, check_request=False) for a in answers}
    assert {where: problems for where, problems in off.items() if problems} == {}


def _primary_ip(**changes: Any) -> dict[str, Any]:
    location = catalog.location("fsn1")
    ip = {
        "id": 42,
        "name": "ip",
        "labels": {},
        "created": "2026-01-30T23:55:00Z",
        "blocked": False,
        "location": location,
        "ip": "2001:db8::/64",
        "dns_ptr": [],
        "protection": {"delete": False},
        "type": "ipv6",
        "auto_delete": False,
        "assignee_type": "unassigned",
        "assignee_id": None,
    }
    return {**ip, **changes}


@pytest.mark.parametrize(
    ("status", "body", "needle"),
    [
        (200, {"primary_ip": _primary_ip()}, None),
        (200, {"primary_ip": _primary_ip(datacenter={"id": 1})}, "undocumented field"),
        (200, {"primary_ip": _primary_ip(assignee_type="robot")}, "response primary_ip"),
        (200, {"primary_ip": _primary_ip(auto_delete=None)}, "response primary_ip"),
        (400, {"error": {"code": "invalid_input", "message": "x"}}, "error 'invalid_input'"),
        (409, {"error": {"code": "server_not_stopped", "message": "x"}}, "status 409"),
        (422, {"error": {"message": "x"}}, "response error"),
    ],
)
def test_the_checker_refuses_what_the_document_does_not_allow(
    status: int, body: dict[str, Any], needle: str | None
) -> None:
    """The checker fails on the old emulator's answers (a `datacenter` key, `invalid_input` as
    400, `server_not_stopped` as 409) and on bodies off the schema."""
    found = violations(Exchange("GET", "/primary_ips/42", None, status, body, {}))
    if needle is None:
        assert found == []
    else:
        assert any(needle in problem for problem in found), found


def test_the_checker_refuses_a_request_body_off_the_schema() -> None:
    """`POST /primary_ips` wants `type` "ipv4" or "ipv6" and a `name`."""
    created = {"primary_ip": _primary_ip()}
    good = Exchange("POST", "/primary_ips", {"name": "a", "type": "ipv6"}, 201, created, {})
    bad = Exchange("POST", "/primary_ips", {"type": "ipv5"}, 201, created, {})
    assert violations(good) == []
    assert {p.split(":")[0] for p in violations(bad)} == {"request <root>", "request type"}
