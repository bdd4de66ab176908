"""The Hetzner emulator with real boxes behind it: the hcloud SDK's calls act on nspawn machines.

Root only. Creating a server boots a box at the server's addresses with its user-data; power
off/on and delete through the API stop, start and remove that box.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fatctl.sandbox import netns
from fatctl.sandbox.hetzner.state import box_ipv6
from fatctl.sandbox.nspawn_driver import NspawnBoxDriver
from tests.fixtures.boxes import require_boxes

USER_DATA = "#cloud-config\nwrite_files:\n  - path: /root/via-api\n    content: created by hcloud\n"


@pytest.fixture
def boxed_hcloud(box_driver: NspawnBoxDriver, tmp_path: Path) -> Iterator[Any]:
    from hcloud import Client

    from fatctl.sandbox.hetzner import start_emulator

    require_boxes()
    handle = start_emulator(tmp_path / "hetzner", driver=box_driver)
    try:
        yield Client(token=handle.token, api_endpoint=handle.url, poll_interval=0.2)
    finally:
        handle.stop()


def ssh_answers(host: str) -> bool:
    try:
        with socket.create_connection((host, 22), timeout=5) as sock:
            return sock.recv(8).startswith(b"SSH-2.0")
    except OSError:
        return False


def test_hcloud_calls_drive_real_boxes(boxed_hcloud: Any, box_driver: NspawnBoxDriver) -> None:
    from hcloud.images import Image
    from hcloud.server_types import ServerType

    created = boxed_hcloud.servers.create(
        name="api-box",
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        user_data=USER_DATA,
    )
    created.action.wait_until_finished(max_retries=600)
    server = boxed_hcloud.servers.get_by_id(created.server.id)
    ipv4 = server.public_net.ipv4.ip
    ipv6 = box_ipv6(server.public_net.ipv6.ip)
    box = box_driver.box(server.id)
    assert (box.record.ipv4, box.record.ipv6) == (ipv4, ipv6)
    box.wait_booted(180)
    box.run(["cloud-init", "status", "--wait"], timeout=300, check=False)
    assert box.run(["cat", "/root/via-api"]).stdout == "created by hcloud"
    assert ssh_answers(ipv4) and ssh_answers(ipv6)

    leader = box.leader()
    server.power_off().wait_until_finished(max_retries=600)
    assert leader and not Path(f"/proc/{leader}").exists()
    assert not box.running() and not ssh_answers(ipv4)
    server.power_on().wait_until_finished(max_retries=600)
    assert box.running()
    box.wait_booted(120)
    assert box.run(["cat", "/root/via-api"]).stdout == "created by hcloud"

    server.delete().wait_until_finished(max_retries=600)
    assert not box.paths.root.exists()
    assert not netns.box_net(server.id, ipv4, ipv6).netns_path.exists()
    assert box_driver.server_ids() == []
