"""Verified HTTPS requests: the last gate before an agent is `ready`.

`https_status(address, name)` connects to `address`:443, verifies the certificate for `name`
(against the system roots, or against `ca_pem` for the sandbox's Caddy internal CA) and returns
the HTTP status code; it raises what the socket, TLS or HTTP layer raises. `https_problem` is
the same request with every such failure turned into one line, and `wait_for_https` retries it
with backoff until an answer or the deadline: a fresh box's Caddy gets its certificate some
seconds after the box is up (the ACME order, and resolvers that cached an early NXDOMAIN), so
one refused or unverified attempt says nothing yet. Requests are recorded like API calls
(fatctl.calllog).
"""

from __future__ import annotations

import http.client
import socket
import ssl

from fatctl.calllog import api_call
from fatctl.errors import FatctlError
from fatctl.pacing.poll import Backoff, WaitTimeout

HTTPS_PORT = 443


class HttpsUnreachable(FatctlError):
    """HTTPS did not answer with a verified certificate before the deadline."""

    exit_code = 1


def https_status(
    address: str,
    name: str,
    *,
    ca_pem: str | None = None,
    timeout: float = 10.0,
    port: int = HTTPS_PORT,
) -> int:
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()

    class _Conn(http.client.HTTPSConnection):
        def connect(self) -> None:
            sock = socket.create_connection((address, port), timeout=timeout)
            try:
                self.sock = context.wrap_socket(sock, server_hostname=name)
            except BaseException:
                sock.close()
                raise

    conn = _Conn(name, port, timeout=timeout, context=context)
    try:
        with api_call("GET", f"https://{name}/ (at {address})") as call:
            conn.request("GET", "/", headers={"Host": name})
            status = call.outcome = conn.getresponse().status
        return status
    finally:
        conn.close()


def failure_reason(exc: BaseException, address: str, name: str) -> str:
    """One line saying why a request failed, most specific cause first (a certificate error
    is an `ssl.SSLError`, which is an `OSError`; a reset connection is an `OSError` too)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate for {name} not trusted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {address} failed: {exc.reason or exc.__class__.__name__}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {address}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {address} refused"
    if isinstance(exc, TimeoutError):
        return f"no answer from {address} in time"
    if isinstance(exc, OSError):
        return f"cannot reach {address}: {exc.strerror or exc.__class__.__name__}"
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP answer from {address}: {exc.__class__.__name__}"
    return f"{exc.__class__.__name__} talking to {address}"


def https_problem(
    address: str,
    name: str,
    *,
    ca_pem: str | None = None,
    timeout: float = 10.0,
    port: int = HTTPS_PORT,
) -> tuple[int | None, str]:
    """(status, "") when HTTPS answered, (None, why not) when the socket, TLS or HTTP failed."""
    try:
        return https_status(address, name, ca_pem=ca_pem, timeout=timeout, port=port), ""
    except (OSError, http.client.HTTPException, UnicodeError, ValueError) as exc:
        return None, failure_reason(exc, address, name)


def wait_for_https(
    address: str,
    name: str,
    backoff: Backoff,
    *,
    ca_pem: str | None = None,
    timeout: float = 10.0,
    port: int = HTTPS_PORT,
) -> int:
    """The first HTTP status HTTPS answers with, retried by `backoff` (its sleep and clock) until
    its deadline; then `HttpsUnreachable` with the last failure, in one line."""
    last = [""]

    def probe() -> int | None:
        status, last[0] = https_problem(address, name, ca_pem=ca_pem, timeout=timeout, port=port)
        return status

    try:
        return backoff.wait_for(f"HTTPS on {name}", probe)
    except WaitTimeout as exc:
        raise HttpsUnreachable(f"{exc.one_line()} (last: {last[0]})") from None
