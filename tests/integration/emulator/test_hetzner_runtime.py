"""Emulator behaviour around the API: state across restarts, the rate budget, the box driver
called by actions, and injected faults (loose statistical bounds, fixed seeds)."""

from __future__ import annotations

import threading

import httpx
import pytest
from hcloud import Client
from hcloud.actions.domain import ActionFailedException
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType

from fatctl.sandbox.hetzner import start_emulator


def _client(handle) -> Client:
    return Client(
        token=handle.token, api_endpoint=handle.url, poll_interval=0.02, poll_max_retries=500
    )


def _create(client, name, **extra):
    return client.servers.create(
        name=name, server_type=ServerType(name="cx23"), image=Image(name="debian-12"), **extra
    )


def test_state_survives_restart_and_pending_actions_resume(tmp_path):
    first = start_emulator(tmp_path, action_delay=0.0)
    client = _client(first)
    _create(client, "kept").action.wait_until_finished()
    ip = client.primary_ips.create(type="ipv4", name="v4", location=Location(name="fsn1"))
    first.set_faults(action_delay=30.0)
    pending = _create(client, "half-made").action  # still running when the emulator stops
    token, first_ip = first.token, ip.primary_ip.ip
    first.stop()

    second = start_emulator(tmp_path, action_delay=0.0)
    try:
        assert second.token == token
        client = _client(second)
        assert sorted(s.name for s in client.servers.get_all()) == ["half-made", "kept"]
        client.servers.actions.get_by_id(pending.id).wait_until_finished()
        assert client.servers.get_by_name("half-made").status == "running"
        again = client.primary_ips.create(type="ipv4", name="v4b", location=Location(name="fsn1"))
        assert again.primary_ip.ip != first_ip  # the address counter persisted too
    finally:
        second.stop()


def test_rate_budget_exhaustion_answers_429_with_headers(tmp_path):
    handle = start_emulator(tmp_path, rate_limit=5)
    try:
        auth = {"Authorization": f"Bearer {handle.token}"}
        with httpx.Client(base_url=handle.url, headers=auth) as http:
            answers = [http.get("/locations") for _ in range(6)]
        assert [r.status_code for r in answers] == [200] * 5 + [429]
        assert [int(r.headers["RateLimit-Remaining"]) for r in answers] == [4, 3, 2, 1, 0, 0]
        limited = answers[-1]
        assert limited.headers["RateLimit-Limit"] == "5"
        assert int(limited.headers["RateLimit-Reset"]) > 0
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert handle.stats()["rate_limited"] == 1
    finally:
        handle.stop()


class RecordingDriver:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def _record(self, *call) -> None:
        with self.lock:
            self.calls.append(call)
        if call[0] == self.fail_on:
            raise RuntimeError("nspawn exploded")

    def create(self, server_id, name, ipv4, ipv6, user_data):
        self._record("create", server_id, name, ipv4, ipv6, user_data)

    def power_on(self, server_id):
        self._record("power_on", server_id)

    def power_off(self, server_id):
        self._record("power_off", server_id)

    def reboot(self, server_id):
        self._record("reboot", server_id)

    def delete(self, server_id):
        self._record("delete", server_id)


def test_actions_drive_the_boxes(tmp_path):
    driver = RecordingDriver()
    handle = start_emulator(tmp_path, driver=driver)
    try:
        client = _client(handle)
        resp = _create(client, "boxed", user_data="#cloud-config\nhostname: boxed\n")
        resp.action.wait_until_finished()
        server = client.servers.get_by_id(resp.server.id)
        for verb in (server.power_off, server.power_on, server.reboot, server.delete):
            verb().wait_until_finished()  # one at a time: a running action locks the server
        sid = server.id
        v4, v6 = server.public_net.ipv4.ip, server.public_net.ipv6.ip.split("/")[0] + "1"
        assert driver.calls == [
            (
                "create",
                sid,
                "boxed",
                v4,
                str(__import__("ipaddress").ip_address(v6)),
                "#cloud-config\nhostname: boxed\n",
            ),
            ("power_off", sid),
            ("power_on", sid),
            ("reboot", sid),
            ("delete", sid),
        ]
    finally:
        handle.stop()


def test_a_failing_driver_fails_the_action(tmp_path):
    handle = start_emulator(tmp_path, driver=RecordingDriver(fail_on="create"))
    try:
        client = _client(handle)
        resp = _create(client, "doomed")
        with pytest.raises(ActionFailedException) as err:
            resp.action.wait_until_finished()
        assert err.value.action.error["code"] == "action_failed"
        assert "nspawn exploded" in err.value.action.error["message"]
        assert client.servers.get_by_id(resp.server.id).status == "off"
    finally:
        handle.stop()


def test_concurrent_creates_of_one_name_make_one_server(hetzner_emulator, hcloud_client):
    from concurrent.futures import ThreadPoolExecutor

    from hcloud import APIException

    def attempt(_: int) -> str:
        try:
            _create(hcloud_client, "racer")
            return "created"
        except APIException as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(attempt, range(16)))
    assert outcomes == ["created"] + ["uniqueness_error"] * 15
    assert [s.name for s in hcloud_client.servers.get_all()] == ["racer"]
    assert len(hcloud_client.primary_ips.get_all()) == 2  # no IPs leaked by the losers


def test_module_main_serves_and_stops(tmp_path):
    import json
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fatctl.sandbox.hetzner",
            "--state-dir",
            str(tmp_path),
            "--rate-limit",
            "50",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = json.loads(proc.stdout.readline())
        endpoint = json.loads((tmp_path / "hetzner.endpoint.json").read_text())
        assert endpoint["url"] == line["url"] and "token" not in line  # token only in the file
        assert (tmp_path / "hetzner.endpoint.json").stat().st_mode & 0o077 == 0
        client = Client(token=endpoint["token"], api_endpoint=endpoint["url"])
        assert len(client.locations.get_all()) == 6
        assert client.request("GET", "/locations")["meta"]["pagination"]["total_entries"] == 6
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert not (tmp_path / "hetzner.endpoint.json").exists()


def test_module_main_rejects_bad_faults(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fatctl.sandbox.hetzner",
            "--state-dir",
            str(tmp_path),
            "--faults",
            "{not json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: --faults is not valid JSON"]


def test_one_emulator_per_state_dir(tmp_path):
    first = start_emulator(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="in use by another emulator"):
            start_emulator(tmp_path)
    finally:
        first.stop()
    start_emulator(tmp_path).stop()  # released on stop


def test_busy_port_fails_cleanly_and_frees_the_state_dir(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match="failed to start"):
            start_emulator(tmp_path, port=taken.getsockname()[1])
    start_emulator(tmp_path).stop()


def test_per_command_action_delays(hetzner_emulator, hcloud_client):
    import time

    hetzner_emulator.set_faults(action_delay=0.0, action_delays={"create_server": 3.0})
    began = time.monotonic()
    resp = _create(hcloud_client, "slow-create")
    assert hcloud_client.servers.actions.get_by_id(resp.action.id).status == "running"
    resp.action.wait_until_finished()
    assert time.monotonic() - began >= 3.0  # a lower bound: the delay was applied
    off = hcloud_client.servers.get_by_id(resp.server.id).power_off()
    off.wait_until_finished()
    assert off.status == "success"
    with pytest.raises(ValueError):
        hetzner_emulator.set_faults(action_delays={"create_server": -1})
