"""The sandbox's HTTPS root (`fatctl.sandbox.box_ca`) with the real Caddy (Debian's, the one the
boxes run): Caddy started on a storage dir seeded the way a new box's disk is seeded issues its
`tls internal` certificate from that root, so the host verifies it with the root's certificate
alone, as `fatctl serve`'s prober does in the sandbox (FATCTL_PROBE_CA_FILE), and a client
trusting another root is refused.

Before the seeding, every box's Caddy made a root of its own: the sandbox's prober could verify
no box without reading its root over SSH, so every sandbox box failed every sweep, and repair
went after healthy boxes.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path

import pytest

from fatctl.sandbox import box_ca

pytestmark = pytest.mark.skipif(shutil.which("caddy") is None, reason="needs caddy (apt)")

FQDN = "cust-ca.sandbox.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fake_image(root: Path) -> Path:
    """The part of the golden image the seeding reads: /var/lib/caddy, its owner and mode."""
    home = root / box_ca.CADDY_HOME
    home.mkdir(parents=True)
    os.chmod(home, 0o755)
    return root


def test_the_root_is_made_once_and_its_key_is_private(tmp_path: Path) -> None:
    first = box_ca.ensure_ca(tmp_path / "ca")
    pem = first.read_bytes()
    assert box_ca.ensure_ca(tmp_path / "ca") == first and first.read_bytes() == pem
    key = tmp_path / "ca" / box_ca.KEY
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == [".lock", box_ca.CERT,
                                                                     box_ca.KEY]  # fmt: skip


def test_racing_makers_leave_one_matching_pair(tmp_path: Path) -> None:
    """The emulator seeds boxes from several threads: however they race, the key on disk is
    the one that signed the certificate on disk."""
    from concurrent.futures import ThreadPoolExecutor

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(lambda _: box_ca.ensure_ca(tmp_path / "ca"), range(16)))
    (cert_path,) = made
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = load_pem_private_key((tmp_path / "ca" / box_ca.KEY).read_bytes(), None)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_a_seeded_caddy_serves_a_certificate_the_sandbox_root_verifies(tmp_path: Path) -> None:
    image, disk, ca = _fake_image(tmp_path / "image"), tmp_path / "disk", tmp_path / "ca"
    box_ca.seed_box(disk, image, ca)
    pki = disk / box_ca.CADDY_PKI
    assert (pki / box_ca.CERT).read_bytes() == (ca / box_ca.CERT).read_bytes()
    assert stat.S_IMODE((pki / box_ca.KEY).stat().st_mode) == 0o600

    # Caddy's data dir is $XDG_DATA_HOME/caddy: the seeded layer's, as on the box.
    data_home = disk / box_ca.CADDY_HOME / ".local" / "share"
    port = _free_port()
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(
        f"{{\n\tadmin off\n\tauto_https disable_redirects\n\thttps_port {port}\n"
        f'\tskip_install_trust\n}}\n{FQDN}:{port} {{\n\ttls internal\n\trespond "ok"\n}}\n'
    )
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.Popen(["caddy", "run", "--config", str(caddyfile), "--adapter",
                             "caddyfile"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        trusting = ssl.create_default_context(cafile=str(ca / box_ca.CERT))
        peer = _handshake(trusting, port, proc)
        assert FQDN in str(peer.get("subjectAltName")), peer
        # Caddy kept the seeded root: it made no other one.
        assert (pki / box_ca.CERT).read_bytes() == (ca / box_ca.CERT).read_bytes()

        other = box_ca.ensure_ca(tmp_path / "other-ca")
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(ssl.create_default_context(cafile=str(other)), port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _handshake(context: ssl.SSLContext, port: int, proc: subprocess.Popen[str]) -> dict:
    """The verified peer certificate of Caddy on `port` for FQDN, once Caddy listens."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "caddy exited"
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=FQDN) as tls,
            ):
                return dict(tls.getpeercert() or {})
        except ssl.SSLCertVerificationError:
            raise
        except (ConnectionError, ssl.SSLError, OSError):
            assert time.monotonic() < deadline, "caddy never served TLS"
            time.sleep(0.3)
