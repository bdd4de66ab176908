"""R2's S3 side in the sandbox: moto's S3 server (`fatctl.sandbox.s3_server`) on loopback.

The process is tracked by `<state_dir>/s3.json` (pid, host, port), so `fatctl sandbox down`
can stop it later from another process; stopping checks that the pid still runs moto before
signalling it. Limits, documented: moto keeps its data in memory (a restart empties the
buckets), and it accepts any access key, secret and session token — so the R2 temporary
credentials the Cloudflare emulator issues work there, but their bucket/prefix scoping and
expiry are not enforced by S3 (the Cloudflare emulator records what it issued instead).
Enforcement through moto's IAM mode (INITIAL_NO_AUTH_ACTION_COUNT, then STS AssumeRole on a
prefix-scoped role) was tried: object reads and writes are allowed and denied correctly, but
moto 5.2.1 rejects signed ListObjectsV2 calls whose Prefix contains "/" (SignatureDoesNotMatch),
which rclone's mount needs, so it is not enabled.

What the stand-in does enforce is an access key's end: R2's temporary credentials "expire
automatically" (developers.cloudflare.com/r2/api/s3/temporary-credentials), and a key that is
gone is refused with S3's `403 InvalidAccessKeyId` ("The AWS Access Key Id you provided does not
exist in our records."). A test cannot wait out a 7-day TTL, so it ends a key at once with
`revoke_access_key(state_dir, key_id)`; every later request signed with it (header or presigned
query) gets that refusal, whichever process revoked it. Moto runs in-process behind that check
(`python -m fatctl.sandbox.s3_server HOST PORT STATE_DIR`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fatctl.sandbox.apiemu import pids

_STATE_FILE = "s3.json"
_REVOKED_FILE = "revoked-keys"
_MARKER = "fatctl.sandbox.s3_server"


@dataclass(frozen=True)
class S3Handle:
    url: str
    pid: int
    state_dir: Path

    def stop(self) -> None:
        stop_s3(self.state_dir)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"moto server did not answer on {url} within {timeout:.0f}s")


def start_s3(
    state_dir: Path, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
) -> S3Handle:
    """Start moto's S3 server (or return the one this state dir already runs)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    running = s3_status(state_dir)
    if running is not None:
        return running
    port = port or _free_port(host)
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    log = open(state_dir / "s3.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", _MARKER, host, str(port), str(state_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    log.close()
    url = f"http://{host}:{port}"
    _ready(url, proc, timeout)
    (state_dir / _STATE_FILE).write_text(json.dumps({"pid": proc.pid, "url": url}))
    return S3Handle(url, proc.pid, state_dir)


def s3_status(state_dir: Path) -> S3Handle | None:
    path = state_dir / _STATE_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not pids.runs(int(info["pid"]), _MARKER):
        path.unlink(missing_ok=True)  # stale: the process is gone or the pid was reused
        return None
    return S3Handle(info["url"], int(info["pid"]), state_dir)


def stop_s3(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the moto server of this state dir; False if none was running."""
    handle = s3_status(state_dir)
    if handle is None:
        return False
    pids.terminate(handle.pid, _MARKER, timeout)
    (state_dir / _STATE_FILE).unlink(missing_ok=True)
    return True


def revoke_access_key(state_dir: Path, key_id: str) -> None:
    """End `key_id` at once, as its expiry would: every later request signed with it is refused."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / _REVOKED_FILE, "a") as out:
        out.write(key_id + "\n")


def revoked_keys(state_dir: Path) -> frozenset[str]:
    try:
        return frozenset((state_dir / _REVOKED_FILE).read_text().split())
    except OSError:
        return frozenset()
