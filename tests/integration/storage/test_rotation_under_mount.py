"""R2 credentials rotate under a running `/data` mount: the box's own rendered files (rclone's
unit, rclone.conf, the AWS config and the credential script), a real `rclone mount` (1.60, as
Debian 12 ships it) over FUSE against the S3 stand-in on loopback, started the way its unit
starts it. A rotation writes the new keys and runs what `creds rotate` runs on the box; the old
key is then revoked at S3 (as R2's temporary credentials "expire automatically",
developers.cloudflare.com/r2/api/s3/temporary-credentials). The same rclone process must go on
writing the agent's files with the new keys: nothing restarted, so the gateway, which
`Requires=` the mount, keeps its process and chat sockets.

Before: the unit loaded the keys into rclone's environment (`EnvironmentFile=`) and rotation
restarted the mount (and with it the gateway); without the restart the mount kept the old key,
and after its revocation every upload was refused (`InvalidAccessKeyId`).

The SDK side this relies on, aws-sdk-go v1 (rclone 1.60's), processcreds/provider.go: a
response with an Expiration is not static (`p.staticCreds = resp.Expiration == nil; if
resp.Expiration != nil { p.SetExpiration(*resp.Expiration, p.ExpiryWindow) }`) and `IsExpired`
"returns true if the credentials retrieved are expired", so the next request runs the process
again. Measured before choosing it (rclone 1.60.1, Expiration 20 s): the process ran every 20 s
while the mount was busy; an upload that met the revoked key failed once ("vfs cache: failed to
upload try #1, will retry in 10s: ... InvalidAccessKeyId") and landed on the retry, 15 s after
the write, from the same rclone process.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from cloud_init import layout as L
from cloud_init.files import render_files
from fatctl.domain import R2Location, ServicePlan
from fatctl.remote.commands.storage import take_r2_credentials
from fatctl.sandbox.s3 import revoke_access_key
from fatctl.services.storage.data import parse_env
from tests.unit.cloud_init.variants import Variant, make_spec

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not (Path("/dev/fuse").exists() and shutil.which("rclone") and shutil.which("fusermount3")),
        reason="needs /dev/fuse, rclone and fusermount3",
    ),
]

BUCKET, PREFIX = "fat-agents", "agents/ag-7f3k2/"
LANDS_WITHIN_S = 150.0  # a bound on waiting, not a measurement: the SDK re-reads every 30 s


def _box_paths(tmp: Path) -> dict[str, str]:
    """Every box path the R2 files name, moved under `tmp` (the test must not touch /etc)."""
    named = (L.R2_ENV, L.RCLONE_CONFIG, L.R2_AWS_CONFIG, L.R2_CREDENTIALS_SCRIPT, L.RCLONE_CACHE)
    return {path: str(tmp / path.lstrip("/")) for path in named}


def _moved(text: str, paths: dict[str, str]) -> str:
    for box, here in paths.items():
        text = text.replace(box, here)
    return text


def _keys(n: int) -> str:
    return (f"RCLONE_CONFIG_R2_ACCESS_KEY_ID=key{n}\nRCLONE_CONFIG_R2_SECRET_ACCESS_KEY="
            f"{'s' * 39}{n}\nRCLONE_CONFIG_R2_SESSION_TOKEN=dG9r{n}+/=\n")  # fmt: skip


def _unit_process(unit: str, paths: dict[str, str], data: Path) -> tuple[list[str], dict[str, str]]:
    """The unit's ExecStart argv and environment (Environment= and EnvironmentFile= lines)."""
    env = {"PATH": os.environ["PATH"]}
    argv: list[str] = []
    for line in _moved(unit, paths).splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            env.update(item.split("=", 1) for item in shlex.split(value))
        elif key == "EnvironmentFile":
            env.update(parse_env(Path(value).read_text()))
        elif key == "ExecStart":
            argv = [a if a != L.DATA_DIR else str(data) for a in shlex.split(value)]
    return argv, env


@pytest.fixture
def box(tmp_path: Path, s3_server: Any) -> Iterator[dict[str, Any]]:
    spec = replace(make_spec(Variant("debian-12", False, ServicePlan.MANAGED, False)),
                   r2=R2Location(s3_server.url, BUCKET, PREFIX))  # fmt: skip
    files = render_files(spec)
    paths = _box_paths(tmp_path)
    for box_path in (L.RCLONE_CONFIG, L.R2_AWS_CONFIG, L.R2_CREDENTIALS_SCRIPT):
        here = Path(paths[box_path])
        here.parent.mkdir(parents=True, exist_ok=True)
        here.write_text(_moved(files[box_path].content, paths))
        here.chmod(files[box_path].mode)
    Path(paths[L.R2_ENV]).write_text(_keys(1))
    data = tmp_path / "data"
    data.mkdir()
    argv, env = _unit_process(files[f"/etc/systemd/system/{L.DATA_UNIT}"].content, paths, data)
    admin = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1",
                         aws_access_key_id="admin", aws_secret_access_key="admin")  # fmt: skip
    admin.create_bucket(Bucket=BUCKET)
    log = open(tmp_path / "rclone.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen([*argv, "-v"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: os.path.ismount(data), 30, "the mount")
        yield {"data": data, "paths": paths, "proc": proc, "s3": admin,
               "state": s3_server.state_dir, "log": tmp_path / "rclone.log"}  # fmt: skip
    finally:
        subprocess.run(["fusermount3", "-uz", str(data)], check=False)
        proc.terminate()
        proc.wait(30)
        log.close()


def _wait(ready: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        assert time.monotonic() < deadline, f"{what} not there within {limit:.0f}s"
        time.sleep(0.5)


def _landed(s3: Any, name: str) -> bool:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    return f"{PREFIX}{name}" in [o["Key"] for o in listed]


def test_rotation_reaches_the_running_mount_without_a_restart(box: dict[str, Any]) -> None:
    data, paths, proc, s3 = box["data"], box["paths"], box["proc"], box["s3"]
    (data / "before.md").write_text("written with the first keys\n")
    _wait(lambda: _landed(s3, "before.md"), LANDS_WITHIN_S, "before.md in the bucket")

    # What `creds rotate` does on the box: the new env file, then its command (no restart).
    Path(paths[L.R2_ENV]).write_text(_keys(2))
    took = subprocess.run(["sh", "-c", _moved(take_r2_credentials(), paths)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert took.returncode == 0, took.stderr
    assert took.stdout == "", "the credential check must not send the keys back"
    revoke_access_key(box["state"], "key1")

    (data / "after.md").write_text("written after the old keys ended\n")
    _wait(lambda: _landed(s3, "after.md"), LANDS_WITHIN_S, "after.md in the bucket")
    assert proc.poll() is None, "the mount was restarted or died"
    assert os.path.ismount(data) and (data / "before.md").read_text().startswith("written")
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}after.md")["Body"].read()
    assert body == b"written after the old keys ended\n"
    log = box["log"].read_text()
    assert "s" * 39 not in log, "rclone logged a secret key"
