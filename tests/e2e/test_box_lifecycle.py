"""A real nspawn box through its life: boot, network, power off/on, reboot, delete.

Root only. The box boots the golden image with a small cloud-config; its disk must survive power
cycles like a real server's, its network must reach the host and nothing beyond, and delete
must leave nothing on the host (process, mounts, namespace, links, files).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fatctl.sandbox import netns
from fatctl.sandbox.box import Box
from fatctl.sandbox.nspawn_driver import NspawnBoxDriver
from tests.fixtures.boxes import box_address, require_boxes

USER_DATA = """#cloud-config
write_files:
  - path: /root/from-user-data
    content: seeded by cloud-init
"""


def ssh_banner(host: str) -> str:
    with socket.create_connection((host, 22), timeout=5) as sock:
        return sock.recv(64).decode(errors="replace")


def host_mounts_of(path: Path) -> list[str]:
    return [
        line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line
    ]


def assert_reachable_from_host_only(box: Box, ipv4: str, ipv6: str) -> None:
    """sshd answers the host on both addresses; the box has no route beyond the host."""
    assert ssh_banner(ipv4).startswith("SSH-2.0-")
    assert ssh_banner(ipv6).startswith("SSH-2.0-")
    assert "default" not in box.run(["ip", "route"]).stdout
    assert "default" not in box.run(["ip", "-6", "route"]).stdout
    probe = box.run(["bash", "-c", "exec 3<>/dev/tcp/192.0.2.1/80"], check=False, timeout=20)
    assert probe.returncode != 0 and "unreachable" in probe.stderr.lower()


def test_box_boots_keeps_its_disk_and_leaves_nothing(box_driver: NspawnBoxDriver) -> None:
    require_boxes()
    server_id, ipv4, ipv6 = box_address(1)
    box_driver.create(server_id, "lifecycle", ipv4, ipv6, USER_DATA)
    box = box_driver.box(server_id)
    assert box.wait_booted(180) in ("running", "degraded")
    status = box.run(["cloud-init", "status", "--wait"], timeout=300, check=False)
    assert "status: done" in status.stdout, status.stdout + status.stderr
    assert box.run(["cat", "/root/from-user-data"]).stdout == "seeded by cloud-init"
    assert box.run(["hostname"]).stdout.strip() == "lifecycle"

    assert_reachable_from_host_only(box, ipv4, ipv6)

    box.run(["sh", "-c", "echo kept > /root/mark"])
    machine_id = box.run(["cat", "/etc/machine-id"]).stdout.strip()
    assert len(machine_id) == 32
    first_leader = box.leader()
    box_driver.power_off(server_id)
    assert not box.running() and box.leader() is None
    assert first_leader and not Path(f"/proc/{first_leader}").exists()  # no box process left
    assert host_mounts_of(box.paths.root) == []  # the overlay died with the box
    assert (box.paths.upper / "root/mark").read_text() == "kept\n"

    box_driver.power_on(server_id)
    box.wait_booted(120)
    assert box.run(["cat", "/root/mark"]).stdout == "kept\n"
    box_driver.reboot(server_id)
    box.wait_booted(120)
    assert box.leader() not in (None, first_leader)
    assert box.run(["cat", "/root/mark"]).stdout == "kept\n"
    assert box.run(["cat", "/etc/machine-id"]).stdout.strip() == machine_id  # same machine

    box_driver.delete(server_id)
    net = netns.box_net(server_id, ipv4, ipv6)
    assert not net.netns_path.exists()
    assert not netns.link_exists(net.host_veth)
    assert not box.paths.root.exists()
    assert host_mounts_of(box.paths.root) == []
    with pytest.raises(OSError):
        ssh_banner(ipv4)


def test_extra_runtime_switches_offline(box_driver: NspawnBoxDriver) -> None:
    """The image's extra OpenClaw version installs on a box with no route out (upgrade flows)."""
    from cloud_init.render import render_install_script
    from fatctl.sandbox import image

    require_boxes()
    server_id, ipv4, ipv6 = box_address(3)
    box_driver.create(server_id, "offline", ipv4, ipv6, USER_DATA)
    box = box_driver.box(server_id)
    box.wait_booted(180)
    for version in (*image.DEFAULT_EXTRA_RUNTIMES, image.DEFAULT_RUNTIME):
        script = render_install_script(version, image.DEFAULT_NODE)
        result = box.run(["bash", "-s"], input=script, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert f"openclaw {version} present" in result.stderr  # nothing downloaded
        assert box.run(["readlink", "/opt/openclaw/current"]).stdout.strip() == version
        got = box.run(["/usr/local/bin/openclaw", "--version"], timeout=120).stdout
        assert version in got


def test_a_restarted_driver_finds_and_stops_running_boxes(
    box_driver: NspawnBoxDriver, golden_image: Path
) -> None:
    """After an emulator restart, a new driver on the same state dir controls the old boxes."""
    require_boxes()
    server_id, ipv4, ipv6 = box_address(4)
    box_driver.create(server_id, "survivor", ipv4, ipv6, USER_DATA)
    box_driver.box(server_id).wait_booted(180)
    leader = box_driver.box(server_id).leader()

    restarted = NspawnBoxDriver(box_driver.state_dir, golden_image)
    again = restarted.box(server_id)
    assert again.running() and again.leader() == leader
    assert again.run(["hostname"]).stdout.strip() == "survivor"
    restarted.power_off(server_id)
    assert leader and not Path(f"/proc/{leader}").exists()
    restarted.power_on(server_id)
    again.wait_booted(120)
    restarted.delete(server_id)
    assert restarted.server_ids() == [] and not netns.link_exists(f"fvh{server_id}")
