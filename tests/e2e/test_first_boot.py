"""The real first boot: fatctl's rendered user-data in a real Debian box, up to a healthy gateway.

Root only. The box boots the golden image with `render_user_data(spec)` as its NoCloud seed; the
test then acts as the provisioning flow does: checks the pinned host key, delivers the secrets
over SSH as the operator (sudo), and waits for `fat-health --json`. `/data` is mounted by the
box's rclone unit from a moto S3 server on the host side of the box's network.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_init import layout as L
from cloud_init.render import render_files, render_user_data
from fatctl.domain import AgentSpec, R2Location, ServicePlan
from fatctl.remote.commands.files import atomic_write
from fatctl.remote.commands.shell import sudo
from fatctl.remote.runner import Connection, connect
from fatctl.remote.target import Target, parse_public_key
from fatctl.sandbox import netns
from fatctl.sandbox.box import Box
from fatctl.sandbox.nspawn_driver import NspawnBoxDriver
from fatctl.sandbox.s3 import S3Handle, start_s3
from fatctl.secrets import random_token
from fatctl.services.agents.material import generate_host_key
from tests.fixtures.boxes import box_address, require_boxes
from tests.fixtures.sshd import keygen

BUCKET = "fat-agents"
AGENT_ID = "ag-e2e01"
PREFIX = f"agents/{AGENT_ID}/"
SEEDED = (
    *("MEMORY.md", "config.json", "sessions/.keep", "outbox/email/.keep"),
    *("outbox/sent/.keep", "outbox/failed/.keep", "events/.keep"),
)
S3_KEY, S3_SECRET = "sandbox-access", "sandbox-secret"  # moto accepts any pair


@pytest.fixture
def s3_on_bridge(tmp_path: Path) -> Iterator[S3Handle]:
    """moto on the host's bridge address: the box reaches it, nothing outside the host does."""
    require_boxes()
    netns.ensure_bridge()
    handle = start_s3(tmp_path / "s3", host=netns.GATEWAY_IPV4)
    try:
        yield handle
    finally:
        handle.stop()


def s3_client(url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )


def make_spec(operator_key: str, host_key_pair: object, s3_url: str) -> AgentSpec:
    return AgentSpec(
        name="firstboot",
        agent_id=AGENT_ID,
        owner_email="e2e@example.com",
        plan=ServicePlan.MANAGED,
        domain="sandbox.test",
        operator_keys=(operator_key,),
        host_keys=(host_key_pair,),  # type: ignore[arg-type]
        r2=R2Location(endpoint=s3_url, bucket=BUCKET, prefix=PREFIX),
        golden_image=True,
        tls_internal=True,
    )


def keyscan(host: str) -> tuple[list[str], str]:
    """The host keys sshd offers, and ssh-keyscan's stderr for the failure message."""
    result = subprocess.run(
        ["ssh-keyscan", "-T", "10", host], capture_output=True, text=True, check=False
    )
    keys = [line.split(None, 1)[1] for line in result.stdout.splitlines() if line[:1] not in "#"]
    return keys, result.stderr.strip()


def deliver(conn: Connection, path: str, content: str, mode: int = 0o600) -> None:
    """As the provisioning flow does: stdin over SSH into an atomic write, via sudo."""
    result = conn.run(sudo(atomic_write(path, mode)), stdin=content.encode(), timeout=60)
    assert result.ok, result.stderr


def deliver_secrets(spec: AgentSpec, host_key: str, key_file: Path, host: str) -> None:
    """Over SSH as the operator, pinned to the host key fatctl generated: fat-health (not in
    user-data: provisioning's secrets step brings it), rclone's credential script and AWS
    config (read once R2 creds are there, also not in user-data), R2 creds, then token."""
    target = Target(spec.name, host, host_keys=(host_key,), key_file=str(key_file))
    conn = connect(target)
    try:
        files = render_files(spec)
        for path in (L.HEALTH_COMMAND, L.R2_CREDENTIALS_SCRIPT, L.R2_AWS_CONFIG):
            deliver(conn, files[path].path, files[path].content, files[path].mode)
        creds = f"RCLONE_CONFIG_R2_ACCESS_KEY_ID={S3_KEY}\n"
        creds += f"RCLONE_CONFIG_R2_SECRET_ACCESS_KEY={S3_SECRET}\n"
        deliver(conn, L.R2_ENV, creds)
        deliver(conn, L.GATEWAY_ENV, f"OPENCLAW_GATEWAY_TOKEN={random_token().reveal()}\n")
    finally:
        conn.close()


def cloud_init_failure(box: Box) -> str:
    """What CI should show when the boot fails: the status and the end of cloud-init's output."""
    status = box.run(["cloud-init", "status", "--long"], check=False).stdout
    output = box.run(["tail", "-n", "40", "/var/log/cloud-init-output.log"], check=False)
    return f"{status}\n--- cloud-init-output.log ---\n{output.stdout}"


def wait_healthy(box: Box, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        result = box.run([L.HEALTH_COMMAND, "--json"], check=False, timeout=30)
        last = result.stdout.strip() or result.stderr.strip()
        if result.returncode == 0:
            return json.loads(result.stdout)
        time.sleep(2)
    units = [L.GATEWAY_UNIT, L.DATA_UNIT, L.SEED_UNIT]
    journal = box.run(
        ["journalctl", "--no-pager", "-n", "40", *(f"-u{u}" for u in units)], check=False
    ).stdout
    raise AssertionError(f"gateway not healthy in {timeout:.0f}s: {last}\n{journal}")


def wait_objects(url: str, timeout: float) -> set[str]:
    client, keys = s3_client(url), set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
        keys = {o["Key"].removeprefix(PREFIX) for o in listing.get("Contents", [])}
        if set(SEEDED) <= keys:
            break
        time.sleep(2)
    return keys


def test_rendered_user_data_boots_to_a_healthy_gateway(
    box_driver: NspawnBoxDriver, s3_on_bridge: S3Handle, tmp_path: Path, figure: Callable[..., None]
) -> None:
    operator_key = keygen(tmp_path / "operator", "fatctl-e2e-operator")
    host_key = generate_host_key("firstboot")
    s3_client(s3_on_bridge.url).create_bucket(Bucket=BUCKET)
    spec = make_spec(operator_key, host_key.pair, s3_on_bridge.url)
    server_id, ipv4, ipv6 = box_address(2)

    started = time.monotonic()
    box_driver.create(server_id, spec.name, ipv4, ipv6, render_user_data(spec))
    box = box_driver.box(server_id)
    box.wait_booted(300)
    status = box.run(["cloud-init", "status", "--wait", "--long"], timeout=600, check=False)
    assert status.returncode == 0 and "status: done" in status.stdout, cloud_init_failure(box)
    figure("cloud-init done", time.monotonic() - started, "s")

    # At once after "done", sshd answers with exactly the pinned host key and nothing else (the
    # first-boot script's sshd reload once left a moment where connections were refused).
    pinned = parse_public_key(host_key.pair.public_key)
    offered, scan_errors = keyscan(ipv4)
    assert [parse_public_key(k) for k in offered] == [pinned], scan_errors

    gateway = box.run(["systemctl", "is-active", L.GATEWAY_UNIT], check=False).stdout.strip()
    assert gateway != "active"
    assert box.run(["systemctl", "is-active", L.GATEWAY_PATH_UNIT]).stdout.strip() == "active"
    assert box.run(["test", "-e", L.GATEWAY_ENV], check=False).returncode != 0

    deliver_secrets(spec, host_key.pair.public_key, tmp_path / "operator", ipv4)

    report = wait_healthy(box, timeout=300)
    figure("boot-to-healthy", time.monotonic() - started, "s")
    assert report["healthy"] is True
    assert report["runtime_version"] == spec.runtime_version
    assert report["data_mounted"] is True
    assert box.run(["systemctl", "is-active", L.GATEWAY_UNIT]).stdout.strip() == "active"
    assert box.run(["mountpoint", "-q", L.DATA_DIR], check=False).returncode == 0
    assert set(SEEDED) <= wait_objects(s3_on_bridge.url, timeout=90)
    mode = box.run(["stat", "-c", "%a %U", L.GATEWAY_ENV]).stdout.split()
    assert mode == ["600", "root"]

    # sshd's effective configuration, as sshd itself resolves it for a customer login (the
    # hardening drop-in must win over Debian's defaults; sshd takes the first value it reads).
    effective = box.run(["sshd", "-T", "-C", "user=customer,host=laptop,addr=192.0.2.7"]).stdout
    settings: dict[str, list[str]] = {}
    for line in effective.splitlines():  # a list setting is one line per value
        key, _, value = line.partition(" ")
        settings.setdefault(key, []).append(value)
    for key, wanted in SSHD_EFFECTIVE.items():
        assert settings.get(key) == wanted, (key, settings.get(key))
    # The gateway unit's own sandbox score, by the box's systemd (the unit test scores offline).
    score = box.run(["systemd-analyze", "security", "--no-pager", L.GATEWAY_UNIT], check=False)
    figure("gateway unit exposure (systemd-analyze security)", exposure_of(score.stdout), "")
    assert exposure_of(score.stdout) <= 3.0


SSHD_EFFECTIVE = {
    "passwordauthentication": ["no"],
    "kbdinteractiveauthentication": ["no"],
    "permitrootlogin": ["no"],
    "pubkeyauthentication": ["yes"],
    "authenticationmethods": ["publickey"],
    "allowusers": [L.OPERATOR_USER, L.CUSTOMER_USER],
    "maxauthtries": ["3"],
    "x11forwarding": ["no"],
    "permituserenvironment": ["no"],
    "hostkey": ["/etc/ssh/ssh_host_ed25519_key"],
}


def exposure_of(report: str) -> float:
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", report)
    assert found, report
    return float(found.group(1))
