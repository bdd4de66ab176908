"""The API's own refusals, as fatctl errors, and the HTTP status of every fatctl error.

The body of every error is the CLI's JSON error: `{"error": {"code": <the CLI's exit code>,
"kind": ..., "message": <one line>}}`, so a platform reads the same codes a script does. The
status says the kind to HTTP: bad input 400, unknown 404, busy or conflicting 409, a cloud or
a box failing 502, anything else 500; the API adds 401, 403 and 422 (an Idempotency-Key reused
with another request).
"""

from __future__ import annotations

import re

from fatctl.errors import (
    BadInput,
    CloudError,
    ConfigError,
    FatctlError,
    LeaseHeld,
    NotFound,
    RemoteError,
    StateError,
)


class _Refusal(FatctlError):
    """A refusal of the API's own: its kind is its class's name (Unauthorized -> unauthorized);
    the request is at fault (exit code 2) unless a subclass says otherwise."""

    exit_code = 2

    @property
    def kind(self) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()


class Unauthorized(_Refusal):
    """No bearer token, or one that is unknown, expired or revoked (which look alike)."""


class Forbidden(_Refusal):
    """A live token without the scope the route needs."""


class Conflict(_Refusal):
    """Another request got there first: the name is taken, or the same key is still running
    (the request was fine, the moment was not: exit code 1, like a held lease)."""

    exit_code = 1


class IdempotencyMismatch(_Refusal):
    """The Idempotency-Key was used before with another request body."""


STATUS_BY_CLASS: tuple[tuple[type[FatctlError], int], ...] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (IdempotencyMismatch, 422),
    (Conflict, 409),
    (LeaseHeld, 409),
    (StateError, 409),
    (NotFound, 404),
    (BadInput, 400),
    (ConfigError, 400),
    (CloudError, 502),
    (RemoteError, 502),
)


def http_status(exc: FatctlError) -> int:
    return next((code for cls, code in STATUS_BY_CLASS if isinstance(exc, cls)), 500)


def error_body(exc: FatctlError) -> dict[str, object]:
    return {"error": {"code": exc.exit_code, "kind": exc.kind, "message": exc.one_line()}}
