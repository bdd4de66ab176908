"""One HTTPS request with certificate verification: the last gate before an agent is `ready`.

`https_status(address, name)` connects to `address`:443, verifies the certificate for `name`
(against the system roots, or against `ca_pem` for the sandbox's Caddy internal CA) and returns
the HTTP status code. Any answer means TLS and the proxy work; the gateway decides the code.
The request is recorded like an API call (fatctl.calllog).
"""

from __future__ import annotations

import http.client
import socket
import ssl

from fatctl.calllog import api_call


def https_status(
    address: str, name: str, *, ca_pem: str | None = None, timeout: float = 10.0
) -> int:
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()

    class _Conn(http.client.HTTPSConnection):
        def connect(self) -> None:
            sock = socket.create_connection((address, 443), timeout=timeout)
            self.sock = context.wrap_socket(sock, server_hostname=name)

    conn = _Conn(name, 443, timeout=timeout, context=context)
    try:
        with api_call("GET", f"https://{name}/ (at {address})") as call:
            conn.request("GET", "/", headers={"Host": name})
            status = call.outcome = conn.getresponse().status
        return status
    finally:
        conn.close()
