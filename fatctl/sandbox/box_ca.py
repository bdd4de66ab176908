"""The sandbox's one HTTPS root: every sandbox box's Caddy issues from it, so the host can
verify any box's certificate the way a real fleet's prober verifies Let's Encrypt's.

A sandbox box serves HTTPS with Caddy's internal CA (`tls internal`: `.test` names get no
public certificate). Left alone, each box's Caddy generates its own root at first start, and
only a client that first reads that box's root over SSH can verify it (provisioning's HTTPS
check does). `fatctl serve`'s fleet prober must not need SSH: that is its point. So the
sandbox's "cloud" puts one root of its own into every new box's disk before the box boots, where
Caddy keeps its local CA (Caddy loads an existing root from its storage and only generates one
when none is there), and `sandbox.env` points the prober at that root's certificate
(`FATCTL_PROBE_CA_FILE`) and at the boxes' recorded addresses (`FATCTL_PROBE_BY_ADDRESS=1`: a
`.test` name resolves nowhere on the host).

Sandbox only: a real box's Caddy gets a public certificate by ACME, and no private key of a CA
travels anywhere. The root's key stays in the sandbox's owner-only state dir and on its boxes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from pathlib import Path

CERT, KEY = "root.crt", "root.key"
# Where Caddy keeps its local CA, relative to the box's root (its `caddy` user's data dir).
CADDY_PKI = Path("var/lib/caddy/.local/share/caddy/pki/authorities/local")
# Caddy's data dir and everything up to the CA, created owned by caddy (the image's `caddy`
# user owns /var/lib/caddy; the parents below it do not exist until Caddy first runs).
CADDY_HOME = Path("var/lib/caddy")
VALID_DAYS = 3650


def ensure_ca(ca_dir: Path) -> Path:
    """The sandbox root's certificate under `ca_dir`, made once (key 0600, certificate 0644);
    concurrent callers (the emulator creates boxes from several threads) see one root."""
    cert = ca_dir / CERT
    if cert.exists():
        return cert
    ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # One maker at a time (processes and threads: an flock per open file), so a key and a
    # certificate always come from the same maker; the certificate's rename is the commit.
    fd = os.open(ca_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if cert.exists():
            return cert
        cert_pem, key_pem = _new_root()
        tmp_key, tmp_cert = ca_dir / f"{KEY}.tmp", ca_dir / f"{CERT}.tmp"
        key_fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(key_fd, "wb") as f:
            f.write(key_pem)
        tmp_cert.write_bytes(cert_pem)
        tmp_key.replace(ca_dir / KEY)
        tmp_cert.replace(cert)
        return cert
    finally:
        os.close(fd)  # releases the lock


def _new_root() -> tuple[bytes, bytes]:
    """A P-256 root like the one Caddy would make (CA, signs certificates), as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fatctl sandbox root")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def seed_box(disk: Path, image: Path, ca_dir: Path) -> None:
    """Put the sandbox root into a new box's disk layer (`disk`, over `image`) where the box's
    Caddy will find it, owned by the image's caddy user as Caddy's own files would be."""
    cert = ensure_ca(ca_dir)
    home = image / CADDY_HOME
    owner = home.stat()
    target = disk / CADDY_PKI
    # The layer's copy of /var/lib/caddy and each new directory below it: caddy's, 0700 like
    # Caddy makes them (the layer's /var/lib/caddy keeps the image's mode).
    (disk / CADDY_HOME).mkdir(parents=True, exist_ok=True)
    os.chmod(disk / CADDY_HOME, owner.st_mode & 0o7777)
    os.chown(disk / CADDY_HOME, owner.st_uid, owner.st_gid)
    path = disk / CADDY_HOME
    for part in CADDY_PKI.relative_to(CADDY_HOME).parts:
        path = path / part
        path.mkdir(mode=0o700, exist_ok=True)
        os.chown(path, owner.st_uid, owner.st_gid)
    for name, data, mode in ((CERT, cert.read_bytes(), 0o644),
                             (KEY, (ca_dir / KEY).read_bytes(), 0o600)):  # fmt: skip
        fd = os.open(target / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chown(target / name, owner.st_uid, owner.st_gid)
