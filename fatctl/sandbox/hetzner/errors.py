"""Hetzner's error envelope `{"error": {"code", "message", "details"}}` and the HTTP status of
each code, as the real API sends them."""

from __future__ import annotations

import json
from typing import Any

from fatctl.sandbox.apiemu.middleware import BearerAuth

# Hetzner's "Error Codes" table (docs.hetzner.cloud, "Errors") and the "Operation specific
# errors" of each endpoint; tests/contract/hetzner checks this table against the document.
STATUS_OF_CODE = {
    "json_error": 400,
    "unauthorized": 401,
    "token_readonly": 401,
    "forbidden": 403,
    "maintenance": 403,
    "resource_limit_exceeded": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "uniqueness_error": 409,
    "conflict": 409,
    "deprecated_api_endpoint": 410,
    "resource_unavailable": 412,
    "invalid_input": 422,
    "service_error": 422,
    "unsupported_error": 422,
    "server_not_stopped": 422,
    "primary_ip_already_assigned": 422,
    "primary_ip_assigned": 422,
    "must_be_unassigned": 422,
    "primary_ip_datacenter_mismatch": 422,
    "placement_error": 422,
    "primary_ip_version_mismatch": 412,
    "server_has_ipv4": 422,
    "server_has_ipv6": 422,
    "resource_in_use": 422,
    "firewall_already_applied": 422,
    "firewall_resource_not_found": 404,
    "locked": 423,
    "protected": 423,
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "unavailable": 503,
    "timeout": 504,
}


class ApiError(Exception):
    """Raised by route code; the app turns it into the envelope with the matching status."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}

    @property
    def status(self) -> int:
        return STATUS_OF_CODE.get(self.code, 422)

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
        # the shared middleware names an injected 503 `service_error`; Hetzner documents
        # `service_error` as a 422 and answers a 503 with `unavailable`
        if status == 503 and code == "service_error":
            code = "unavailable"
        return json.dumps(ApiError(code, message).payload()).encode()
