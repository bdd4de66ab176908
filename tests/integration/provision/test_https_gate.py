"""The provisioning HTTPS gate against a real local HTTPS server whose answers change between
attempts, the way a fresh box's do: nothing listening yet, then a certificate that does not
verify (Caddy before its ACME order completed), then a name that does not resolve (a resolver
that met NXDOMAIN), then 200. The gate must retry through all of them on the run's backoff
(its sleep and clock injected: nothing waits for real) and, when the deadline passes, end with
one clean line naming the last failure instead of a raw `ssl`/socket traceback.
"""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fatctl.pacing.poll import Backoff
from fatctl.services.common.https_probe import HttpsUnreachable, wait_for_https
from fatctl.services.provision.box import check_https
from fatctl.services.provision.flow import Options

NAME = "localhost"


def _cert(subject: str, issuer: tuple[x509.Name, Any] | None, *, ca: bool) -> tuple[bytes, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer else (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), key


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class ChangingServer:
    """A real HTTPS server on loopback whose state moves one phase on at every backoff sleep:
    refuse (not started) -> untrusted certificate -> NXDOMAIN -> trusted certificate, 200."""

    PHASES = ("refuse", "bad_cert", "nxdomain", "ok")

    def __init__(self, tmp: Path) -> None:
        ca_pem, ca_key = _cert("fatctl test CA", None, ca=True)
        ca_name = x509.load_pem_x509_certificate(ca_pem).subject
        self.ca_file = tmp / "ca.pem"
        self.ca_file.write_bytes(ca_pem)
        self.contexts = {
            "bad_cert": self._context(tmp, "self", *_cert(NAME, None, ca=False)),
            "ok": self._context(tmp, "good", *_cert(NAME, (ca_name, ca_key), ca=False)),
        }
        with socket.socket() as probe:  # a port nothing listens on until phase 2
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.phase = 0
        self.sleeps: list[float] = []
        self.now = 0.0
        self.httpd: http.server.HTTPServer | None = None
        self.stuck: str | None = None  # a phase the server never leaves

    def stick(self, state: str) -> None:
        self.stuck = state
        self._start()

    @staticmethod
    def _context(tmp: Path, tag: str, pem: bytes, key: Any) -> ssl.SSLContext:
        (tmp / f"{tag}.pem").write_bytes(pem + _key_pem(key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / f"{tag}.pem")
        return context

    @property
    def state(self) -> str:
        return self.stuck or self.PHASES[min(self.phase, len(self.PHASES) - 1)]

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.phase += 1
        if self.state != "refuse":
            self._start()

    def _start(self) -> None:
        if self.httpd is not None:
            return
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        class Tls(http.server.ThreadingHTTPServer):
            def get_request(self) -> tuple[Any, Any]:
                sock, addr = self.socket.accept()
                context = server.contexts.get(server.state, server.contexts["ok"])
                try:
                    return context.wrap_socket(sock, server_side=True), addr
                except (ssl.SSLError, OSError):
                    sock.close()
                    raise

            def handle_error(self, request: Any, client_address: Any) -> None:
                return None  # the refused handshakes are the point of the test

        self.httpd = Tls(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChangingServer]:
    server = ChangingServer(tmp_path)
    # The production gate trusts the system roots; OpenSSL takes them from SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
    real_getaddrinfo = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        # No public DNS here: the NXDOMAIN phase is the resolver's answer, stood in for.
        if server.state == "nxdomain":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    yield server
    server.stop()


def _flow(world: ChangingServer, timeout: float = 60.0) -> Any:
    backoff = Backoff(interval=1.0, factor=2.0, cap=8.0, timeout=timeout,
                      sleep=world.sleep, clock=world.clock)  # fmt: skip
    opts = Options(backoff=backoff, https_port=world.port)
    return SimpleNamespace(spec=SimpleNamespace(fqdn=NAME), opts=opts, name="alice")


def test_gate_retries_through_refusal_bad_cert_and_nxdomain_until_200(
    world: ChangingServer,
) -> None:
    """Fails on the old gate: one attempt, and the refused connection escaped as a raw
    ConnectionRefusedError."""
    answer = check_https(_flow(world), target=None, pool=None)  # type: ignore[arg-type]
    assert answer == "HTTP 200"
    assert world.sleeps == [1.0, 2.0, 4.0]  # three failures, each waited for on the fake clock


def test_gate_ends_with_one_clean_line_at_its_deadline(world: ChangingServer) -> None:
    """Stuck on an untrusted certificate: the deadline ends the wait with the TLS reason in one
    line (the old gate raised ssl.SSLCertVerificationError, a traceback at the CLI)."""
    world.stick("bad_cert")
    with pytest.raises(HttpsUnreachable) as caught:
        check_https(_flow(world, timeout=10.0), target=None, pool=None)  # type: ignore[arg-type]
    message = caught.value.one_line()
    assert "\n" not in message
    assert message.startswith("timed out after 10s waiting for HTTPS on localhost")
    assert "certificate for localhost not trusted" in message


def test_unresolvable_name_is_one_line(world: ChangingServer) -> None:
    world.stuck = "nxdomain"
    backoff = Backoff.instant(timeout=0.0)
    with pytest.raises(HttpsUnreachable, match=r"cannot resolve localhost: Name or service"):
        wait_for_https(NAME, NAME, backoff, port=world.port)
