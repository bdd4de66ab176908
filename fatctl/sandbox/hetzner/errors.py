"""Hetzner's error envelope `{"error": {"code", "message", "details"}}` and the HTTP status of
each code, as the real API sends them."""

from __future__ import annotations

import json
from typing import Any

from fatctl.sandbox.apiemu.middleware import BearerAuth

STATUS_OF_CODE = {
    "invalid_input": 400,
    "json_error": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "resource_limit_exceeded": 403,
    "not_found": 404,
    "conflict": 409,
    "uniqueness_error": 409,
    "server_not_stopped": 409,
    "resource_in_use": 409,
    "firewall_already_applied": 422,
    "firewall_already_removed": 422,
    "resource_unavailable": 412,
    "locked": 423,
    "protected": 423,
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "service_error": 503,
    "unavailable": 503,
    "maintenance": 503,
}


class ApiError(Exception):
    """Raised by route code; the app turns it into the envelope with the matching status."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}

    @property
    def status(self) -> int:
        return STATUS_OF_CODE.get(self.code, 400)

    def payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def invalid(field: str, message: str) -> ApiError:
    """`invalid_input` with the per-field details the real API gives."""
    return ApiError(
        "invalid_input",
        f"invalid input in field '{field}'",
        {"fields": [{"name": field, "messages": [message]}]},
    )


def not_found(kind: str) -> ApiError:
    return ApiError("not_found", f"{kind} not found")


class HetznerDialect(BearerAuth):
    request_id_header = b"x-correlation-id"
    prefix = "/v1"

    def error_body(self, status: int, code: str, message: str) -> bytes:
        return json.dumps(ApiError(code, message).payload()).encode()
