"""Pure builders behind the sandbox boxes: network commands, boot argv, seed, image digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from fatctl.sandbox import chroot, image, netns
from fatctl.sandbox.nspawn_cmd import BoxPaths, boot_cmd, meta_data, nsenter_cmd


def test_box_net_names_fit_linux_interface_limit() -> None:
    net = netns.box_net(123456789012, "10.77.3.4", "fd77:0:0:0:5::1")
    assert len(net.host_veth) <= 15 and len(net.peer_veth) <= 15
    assert net.netns_path == Path("/run/netns/fatbox-123456789012")


@pytest.mark.parametrize(("v4", "v6"), [("10.78.0.2", ""), ("", "fd78::1"), ("8.8.8.8", "")])
def test_box_net_refuses_addresses_outside_the_sandbox(v4: str, v6: str) -> None:
    with pytest.raises(netns.NetworkError, match="outside"):
        netns.box_net(1, v4, v6)


def test_box_gets_on_link_addresses_and_no_default_route() -> None:
    cmds = netns.box_net_cmds(netns.box_net(9, "10.77.0.9", "fd77:0:0:0:9::1"))
    flat = [" ".join(c) for c in cmds]
    assert "ip -n fatbox-9 addr add 10.77.0.9/16 dev eth0" in flat
    assert "ip -n fatbox-9 -6 addr add fd77:0:0:0:9::1/48 dev eth0 nodad" in flat
    assert "ip link set fvh9 master fatbr0 up" in flat
    # No route beyond the host: nothing but the on-link prefixes.
    assert not any("route" in c or "default" in c for c in flat)


def test_box_without_ipv4_gets_only_ipv6() -> None:
    flat = [" ".join(c) for c in netns.box_net_cmds(netns.box_net(3, "", "fd77::3"))]
    assert not any(" addr add 10." in c for c in flat)
    assert any("fd77::3/48" in c for c in flat)


def test_bridge_holds_the_reserved_gateway_addresses() -> None:
    flat = [" ".join(c) for c in netns.bridge_cmds()]
    assert "ip addr replace 10.77.0.1/16 dev fatbr0" in flat
    assert "ip -6 addr replace fd77::1/48 dev fatbr0 nodad" in flat
    # a bridge left with fd77::1/64 keeps that prefix through `addr replace`: the route covers it
    assert "ip -6 route replace fd77::/48 dev fatbr0" in flat
    assert netns.SANDBOX_IPV4_NET == "10.77.0.0/16" and netns.SANDBOX_IPV6_NET == "fd77::/48"


def test_boot_cmd_mounts_the_box_disk_privately_then_boots_nspawn() -> None:
    paths = BoxPaths(Path("/s/box-4"))
    argv = boot_cmd(paths, Path("/img/rootfs"), Path("/run/netns/fatbox-4"), 4)
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    # lower, upper, work, merged are the script's positional arguments, in that order.
    i = argv.index("/img/rootfs")
    want = ["/img/rootfs", "/s/box-4/disk", "/s/box-4/overlay-work", "/s/box-4/rootfs"]
    assert argv[i : i + 4] == want
    assert "--network-namespace-path=/run/netns/fatbox-4" in argv
    assert "--bind-ro=/s/box-4/seed:/var/lib/cloud/seed/nocloud" in argv
    assert "--register=no" in argv and "--boot" in argv
    assert "--capability=CAP_NET_ADMIN" in argv  # the box's own firewall must load
    # The image is never booted directly, and never volatile: the box keeps its disk.
    assert not any(a.startswith("--volatile") for a in argv)
    assert "-D" not in argv  # -D comes from the script, pointing at the merged dir


def test_meta_data_names_instance_and_host() -> None:
    assert meta_data("fatbox-7", "alpha") == "instance-id: fatbox-7\nlocal-hostname: alpha\n"


def test_nsenter_cmd_enters_all_namespaces_with_a_clean_environment() -> None:
    argv = nsenter_cmd(4242, ["cloud-init", "status"])
    assert argv[:5] == ["nsenter", "-t", "4242", "-a", "--"]
    assert argv[5:7] == ["env", "-i"]
    assert argv[-2:] == ["cloud-init", "status"]


def test_chroot_cmd_mounts_inside_a_private_namespace() -> None:
    argv = chroot.chroot_cmd(Path("/r"), ["apt-get", "update"])
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert argv[-3:] == ["/r", "apt-get", "update"]


def test_host_mirrors_read_from_deb822(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    assert chroot.host_mirrors(sources) == (
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
    )
    assert chroot.host_mirrors(tmp_path / "missing") == (
        chroot.DEFAULT_MIRROR,
        chroot.DEFAULT_SECURITY,
    )


def test_sources_file_has_updates_and_security() -> None:
    text = chroot.sources_file("bookworm", "http://m/debian", "http://m/debian-security")
    assert "Suites: bookworm bookworm-updates" in text
    assert "Suites: bookworm-security" in text


def test_image_digest_changes_with_every_input() -> None:
    base = image.image_digest("2026.9.6", "24.21.0")
    assert base == image.image_digest("2026.9.6", "24.21.0")
    others = {
        image.image_digest("2026.9.5", "24.21.0"),
        image.image_digest("2026.9.6", "24.20.0"),
        image.image_digest("2026.9.6", "24.21.0", ["2026.9.5"]),
    }
    assert base not in others and len(others) == 3


def test_image_packages_include_the_box_list() -> None:
    from cloud_init.packages import BOX_PACKAGES

    assert set(BOX_PACKAGES) <= set(image.image_packages())
    assert {"systemd", "cloud-init", "openssh-server", "sudo"} <= set(image.image_packages())


def test_bad_version_is_refused_before_any_build(tmp_path: Path) -> None:
    from fatctl.errors import BadInput

    with pytest.raises(BadInput):
        image.ensure_golden_image("2026.9.6; rm -rf /", "24.21.0", cache_root=tmp_path)
    assert not (tmp_path / "images").exists()


def test_process_identity_tells_a_live_process_from_a_recycled_pid() -> None:
    import os

    from fatctl.sandbox import procs

    me = os.getpid()
    started = procs.start_time(me)
    assert started is not None and procs.alive(me, started)
    assert not procs.alive(me, started + 1)  # same pid, other start time: not ours to kill
    assert procs.kill_verified(me, started + 1)  # refuses to signal, reports "not that process"
    assert procs.start_time(2**22 + 17) is None


def test_a_failed_build_leaves_no_image_and_keeps_its_log(tmp_path: Path) -> None:
    final = tmp_path / "images" / "abc"

    def broken(tmp: Path) -> None:
        (tmp / "rootfs").mkdir()
        (tmp / "build.log").write_text("apt exploded\n")
        raise chroot.BuildError("step failed")

    with pytest.raises(chroot.BuildError):
        image._build_stage(final, broken)
    assert not final.exists()
    assert list(final.parent.glob("abc.tmp-*")) == []
    assert (final.parent / "abc.failed.log").read_text() == "apt exploded\n"


def test_a_build_appears_complete_or_not_at_all(tmp_path: Path) -> None:
    final = tmp_path / "images" / "abc"
    final.parent.mkdir(parents=True)
    (final.parent / "abc.tmp-999999").mkdir()  # left by a killed build

    def fine(tmp: Path) -> None:
        assert not final.exists()  # nothing visible under the final name while building
        (tmp / "rootfs").mkdir()

    image._build_stage(final, fine)
    assert (final / "rootfs").is_dir() and (final / "manifest.json").exists()
    assert list(final.parent.glob("abc.tmp-*")) == []


def test_nspawn_driver_satisfies_the_box_driver_protocol(tmp_path: Path) -> None:
    from fatctl.sandbox.driver import BoxDriver
    from fatctl.sandbox.nspawn_driver import NspawnBoxDriver

    driver: BoxDriver = NspawnBoxDriver(tmp_path, tmp_path / "rootfs")  # mypy checks the shape
    assert driver is not None
    with pytest.raises(Exception, match="no sandbox box"):
        driver.power_on(42)


def test_prune_keeps_the_current_image_its_base_and_running_builds(tmp_path: Path) -> None:
    keep = tmp_path / "images" / "cur" / "rootfs"
    base = tmp_path / "base" / image.base_digest()
    stale = [tmp_path / "images" / "old", tmp_path / "base" / "oldbase"]
    building = tmp_path / "images" / "new.tmp-123"
    for path in (keep, base, building, *stale):
        path.mkdir(parents=True)
    assert sorted(image.prune(tmp_path, keep)) == sorted(stale)
    assert keep.is_dir() and base.is_dir() and building.is_dir()
    assert not any(p.exists() for p in stale)
