"""What a probe makes of an answer or a failure, without a network: the pure half of the prober.

The answers follow OpenClaw's docs/gateway/health.md and its server (dist/server-start-*.mjs,
`handleGatewayProbeRequest`): `/readyz` "statusCode = result.ready ? 200 : 503; body =
JSON.stringify(includeDetails ? result : { ready: result.ready })", details (`failing`) only for
local or authenticated callers.
"""

from __future__ import annotations

import ssl

import httpx
import pytest

from fatctl.monitoring.probe import ProbeTarget, classify_answer, classify_error

NOT_GATEWAY = "without a readiness answer (not the gateway)"


@pytest.mark.parametrize(
    ("status", "body", "ok", "reason"),
    [
        (200, b'{"ready":true}', True, ""),
        (503, b'{"ready":false}', False, "gateway not ready (HTTP 503)"),
        (503, b'{"ready":false,"failing":["telegram:default","plugin-reload"],"uptimeMs":5}',
         False, "gateway not ready: telegram:default, plugin-reload (HTTP 503)"),
        (200, b"<html>parked</html>", False, f"HTTP 200 {NOT_GATEWAY}"),
        (502, b"", False, f"HTTP 502 {NOT_GATEWAY}"),
        (200, b'{"ready":false}', False, "HTTP 200, ready=false"),
        (200, b'{"ready":"yes"}', False, 'HTTP 200, ready="yes"'),
        (200, b"\xff\xfe", False, f"HTTP 200 {NOT_GATEWAY}"),
        (200, b"[true]", False, f"HTTP 200 {NOT_GATEWAY}"),
    ],
)  # fmt: skip
def test_answers_are_ready_only_as_the_gateway_says_it(
    status: int, body: bytes, ok: bool, reason: str
) -> None:
    assert classify_answer(status, body) == (ok, reason)


def _untrusted() -> ssl.SSLCertVerificationError:
    """As the ssl module raises it: with the verify message OpenSSL gave."""
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "unable to get local issuer certificate"
    return err


TARGET = ProbeTarget("alice", "alice.agents.example", address="10.0.0.7")


def _wrapped(inner: BaseException, outer: type[httpx.HTTPError]) -> httpx.HTTPError:
    """What httpx raises: its exception, caused by httpcore's, caused by the socket's."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise httpx.ConnectError("wrapped") from exc
    except httpx.ConnectError as middle:
        err = outer("outer")
        err.__cause__ = middle
        return err


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError(), "no answer from 10.0.0.7 within 2 s"),
        (httpx.ConnectTimeout("x"), "no connect from 10.0.0.7 within 2 s"),
        (httpx.ReadTimeout("x"), "no answer from 10.0.0.7 within 2 s"),
        (httpx.RemoteProtocolError("Server disconnected"),
         "10.0.0.7 closed the connection without an answer"),
        (_wrapped(ConnectionRefusedError(111, "refused"), httpx.ConnectError),
         "connection to 10.0.0.7 refused"),
        (_wrapped(_untrusted(), httpx.ConnectError),
         "certificate for alice.agents.example not trusted: unable to get local issuer "
         "certificate"),
        (httpx.ConnectError("no cause"), "ConnectError talking to 10.0.0.7"),
    ],
)  # fmt: skip
def test_failures_become_one_line_naming_the_box(exc: BaseException, reason: str) -> None:
    assert classify_error(exc, TARGET, 2.0) == reason


def test_a_target_without_address_is_asked_by_name() -> None:
    plain = ProbeTarget("bob", "bob.agents.example")
    assert plain.url == "https://bob.agents.example/readyz"
    assert plain.host_header == "bob.agents.example"


def test_a_target_with_address_and_port_keeps_the_name_for_host() -> None:
    v6 = ProbeTarget("bob", "bob.agents.example", address="fd77::1", port=8443)
    assert v6.url == "https://[fd77::1]:8443/readyz"
    assert v6.host_header == "bob.agents.example:8443"
