"""The HTTP status and JSON body of every fatctl error, and the API's own refusals: the body
carries the CLI's exit code, so a platform reads the codes a script does."""

from __future__ import annotations

import pytest

from fatctl import errors
from fatctl.pacing.poll import WaitTimeout
from fatctl.service.errors import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    Unauthorized,
    error_body,
    http_status,
)


@pytest.mark.parametrize(
    ("exc", "status", "code", "kind"),
    [(errors.BadInput("x"), 400, 2, "bad_input"), (errors.ConfigError("x"), 400, 2, "config"),
     (errors.NotFound("x"), 404, 1, "not_found"), (errors.LeaseHeld("x"), 409, 1, "lease_held"),
     (errors.StateError("x"), 409, 1, "state"), (errors.CloudError("x"), 502, 1, "cloud"),
     (errors.RemoteError("x"), 502, 1, "remote"), (errors.HostKeyMismatch("x"), 502, 1,
     "host_key_mismatch"), (errors.SecretError("x"), 500, 1, "secret"),
     (WaitTimeout("x"), 500, 1, "failed"), (Unauthorized("x"), 401, 2, "unauthorized"),
     (Forbidden("x"), 403, 2, "forbidden"), (Conflict("x"), 409, 1, "conflict"),
     (IdempotencyMismatch("x"), 422, 2, "idempotency_mismatch")],
)  # fmt: skip
def test_status_code_and_kind(exc: errors.FatctlError, status: int, code: int, kind: str) -> None:
    assert http_status(exc) == status
    assert error_body(exc) == {"error": {"code": code, "kind": kind, "message": "x"}}


def test_every_fatctl_error_class_has_a_status() -> None:
    """A new error class lands in one of the mapped families (or is a plain 500 failure)."""
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.FatctlError)]  # fmt: skip
    for cls in classes:
        status = http_status(cls("x"))
        assert status in (400, 404, 409, 500, 502), cls
        if cls("x").exit_code == 2:  # the CLI's bad input is the client's fault: 400
            assert status == 400, cls


def test_one_line_message_with_hint() -> None:
    body = error_body(errors.BadInput("bad\nname", hint="use a-z"))
    assert body["error"]["message"] == "bad name (use a-z)"  # type: ignore[index]
