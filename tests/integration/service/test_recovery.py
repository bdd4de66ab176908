"""A provision workflow whose process dies mid-flow is finished by the next start, with exactly
one of every cloud resource.

`fatctl serve --no-box` runs as a real process; the Hetzner emulator answers a server create
at once but finishes its action only after a delay (as Hetzner does: the create returns the
server and a running `create_server` action), so the flow is inside its infra step when the
server appears. The process is then killed (SIGKILL: nothing runs on the way out), which
leaves the workflow PENDING under the server's executor id. DBOS's documentation:
"When an application with an executor ID restarts, it only recovers pending workflows assigned
to that executor ID" (docs.dbos.dev, production/self-hosting/workflow-recovery); so the test
relaunches with that id, in this process, and the recovered flow adopts the server by labels.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.cli import fatctl_env, start_fatctl
from tests.integration.service.conftest import make_tokens, service_plane

POLL_S = 0.2
CREATE_ACTION_DELAY_S = 3.0


@pytest.fixture
def slow_hetzner(tmp_path: Path) -> Iterator[Any]:
    from fatctl.sandbox.hetzner import start_emulator

    slow_create = {"action_delays": {"create_server": CREATE_ACTION_DELAY_S}}
    handle = start_emulator(tmp_path / "hetzner", action_delay=0.05, faults=slow_create)
    try:
        yield handle
    finally:
        handle.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(plane: Any, master_key: str, tmp_path: Path) -> dict[str, str]:
    s = plane.settings
    return fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path), FATCTL_DATABASE_URL=s.database_url,
        HCLOUD_TOKEN=plane.hetzner.token, HCLOUD_ENDPOINT=s.hcloud_endpoint,
        CLOUDFLARE_API_TOKEN=plane.cloudflare.token, CLOUDFLARE_BASE_URL=s.cloudflare_base_url,
        CLOUDFLARE_ACCOUNT_ID=s.cloudflare_account_id, FATCTL_DOMAIN=s.domain,
        FATCTL_ENGINE="hcloud", FATCTL_MASTER_KEY=master_key, FATCTL_POLL_INTERVAL=str(POLL_S),
        FATCTL_R2_PARENT_ACCESS_KEY_ID=s.r2_parent_access_key_id, FATCTL_API_RETRIES="6",
    )  # fmt: skip


def wait_until(what: str, probe: Any, deadline_s: float = 60.0) -> Any:
    """Poll `probe` until it returns something truthy (a bound on a hang, not on speed)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if found := probe():
            return found
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def serving_api(proc: Any, port: int, token: str, log: Path) -> httpx.Client:
    """A client of the `fatctl serve` process `proc` on `port`, once it answers; its log fails
    the test if it exits first."""
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    def up() -> bool:
        try:
            return api.get("/v1/agents").status_code == 200
        except httpx.TransportError:
            return proc.poll() is not None and pytest.fail(log.read_text())

    wait_until("fatctl serve answers", up)
    return api


@contextmanager
def serve_then_kill(env: dict[str, str], token: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """`fatctl serve --no-box` as a real process and a client of it; SIGKILLed when the block
    ends (nothing runs on the way out), which leaves its workflows PENDING."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = start_fatctl("serve", "--no-box", "--port", str(port), env=env, stdout=log,
                            stderr=log)  # fmt: skip
        try:
            yield serving_api(proc, port, token, log_path)
        finally:
            proc.kill()
            proc.wait()


def finish_as_the_killed_server(plane: Any, settings: Any, wfid: str) -> Any:
    """Check the killed server left `wfid` PENDING, then relaunch under its executor id (see
    the module docstring) in this process and return the recovered workflow's result."""
    from dbos import DBOS, DBOSClient

    from fatctl.infra import make_engine
    from fatctl.service.context import Runtime
    from fatctl.service.runtime import running, system_database_url

    client = DBOSClient(system_database_url=system_database_url(plane.settings.database_url))
    try:
        assert client.retrieve_workflow(wfid).get_status().status == "PENDING"
    finally:
        client.destroy()
    executor = f"serve-{socket.gethostname()}"  # the killed server's
    rt = Runtime(plane.db, plane.ring, settings, lambda: make_engine(settings), skip_box=True,
                 executor_id=executor, queue_poll_s=0.05)  # fmt: skip
    with running(rt):
        return DBOS.retrieve_workflow(wfid).get_result()


def test_killed_server_mid_provision_is_recovered_with_one_server(
    tmp_path: Path, slow_hetzner: Any, cloudflare_emulator: Any, db_url: str
) -> None:
    from fatctl.secrets import generate_master_key

    key = generate_master_key()
    plane = service_plane(tmp_path, slow_hetzner, cloudflare_emulator, db_url, master_key=key)
    tokens = make_tokens(plane.db)
    with serve_then_kill(serve_env(plane, key, tmp_path), tokens["writer"], tmp_path) as api:
        answer = api.post("/v1/agents", json={"name": "alpha", "owner_email": "demo@example.com"})
        assert answer.status_code == 202, answer.text
        wfid = answer.json()["workflow_id"]
        wait_until("the server is created", lambda: "alpha" in plane.servers())

    settings = dataclasses.replace(plane.settings, poll_interval=str(POLL_S))
    result = finish_as_the_killed_server(plane, settings, wfid)
    assert result["state"] == "provisioning" and result["server_id"]
    servers = plane.servers()
    assert list(servers) == ["alpha"] and str(servers["alpha"]["id"]) == result["server_id"]
    assert len(plane.primary_ips()) == 2
    assert plane.dns() == [("A", "alpha.sandbox.test", result["ipv4"]),
                           ("AAAA", "alpha.sandbox.test", result["ipv6"])]  # fmt: skip
    plane.db.dispose()
