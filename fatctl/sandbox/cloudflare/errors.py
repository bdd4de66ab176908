"""Cloudflare's v4 envelope (`success`, `errors`, `messages`, `result`) and its error codes."""

from __future__ import annotations

import json
from typing import Any

from fatctl.sandbox.apiemu.middleware import BearerAuth

# the middleware speaks in Hetzner-like code names; Cloudflare answers with numbers
_NUMERIC = {
    "unauthorized": 10000,
    "rate_limit_exceeded": 971,
    "server_error": 10001,
    "service_error": 10001,
    "locked": 1015,
    "conflict": 1016,
}


class CfError(Exception):
    """An error answer; `chain` is Cloudflare's `error_chain`: the causes under a wrapper code."""

    def __init__(
        self, status: int, code: int, message: str, chain: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.chain = status, code, message, chain

    def payload(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.chain:
            error["error_chain"] = self.chain
        return envelope(None, errors=[error])


def envelope(
    result: Any,
    errors: list[dict[str, Any]] | None = None,
    result_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": not errors,
        "errors": errors or [],
        "messages": [],
        "result": result,
    }
    if result_info is not None:
        body["result_info"] = result_info
    return body


def bad_request(code: int, message: str) -> CfError:
    return CfError(400, code, message)


def record_missing() -> CfError:
    return CfError(404, 81044, "Record does not exist.")


def zone_missing() -> CfError:
    return CfError(
        404, 7003, "Could not route to /zones, perhaps your object identifier is invalid?"
    )


class CloudflareDialect(BearerAuth):
    request_id_header = b"cf-ray"
    prefix = "/client/v4"

    def error_body(self, status: int, code: str, message: str) -> bytes:
        number = _NUMERIC.get(code, 10000)
        if number == 971:  # Cloudflare's words for it (lablabs/cloudflare-exporter#74 quotes them)
            message = "Please wait and consider throttling your request speed"
        return json.dumps(CfError(status, number, message).payload()).encode()
