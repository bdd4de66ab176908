"""The sandbox network: one host bridge, and per box a network namespace with a veth on it.

Addresses come from the Hetzner emulator, which allocates from the ranges below (the host's
gateway address `.1` is reserved). Boxes see the whole range on-link and get no default route:
they reach the host and each other, nothing beyond (the host does not forward, there is no NAT).
The interface is configured from the host before boot, as Hetzner's network does for a server;
the image tells cloud-init to leave it alone.

Command builders are pure (argv lists); `ensure_*`/`remove_*` run them. Teardown goes by the
recorded names only, and is safe to repeat after a partial setup.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fatctl.errors import FatctlError

SANDBOX_IPV4_NET = "10.77.0.0/16"
# a /48 so that each server gets its own /64 as on Hetzner (fd77:0:0:N::/64, N >= 1)
SANDBOX_IPV6_NET = "fd77::/48"
BRIDGE = "fatbr0"
GATEWAY_IPV4 = str(ipaddress.IPv4Network(SANDBOX_IPV4_NET)[1])
GATEWAY_IPV6 = str(ipaddress.IPv6Network(SANDBOX_IPV6_NET)[1])
BOX_IFACE = "eth0"
NETNS_DIR = Path("/run/netns")


class NetworkError(FatctlError):
    """An `ip` command setting up or removing the sandbox network failed."""


@dataclass(frozen=True)
class BoxNet:
    """One box's network identity: the names created for it on the host and its addresses."""

    netns: str
    host_veth: str
    peer_veth: str  # the box end, renamed to eth0 once inside the namespace
    ipv4: str  # "" when the server has no IPv4
    ipv6: str  # "" when the server has no IPv6

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns


def box_net(server_id: int, ipv4: str, ipv6: str) -> BoxNet:
    """Names for server `server_id` (interface names stay under Linux's 15 characters)."""
    if ipv4 and ipaddress.ip_address(ipv4) not in ipaddress.ip_network(SANDBOX_IPV4_NET):
        raise NetworkError(f"box address {ipv4} is outside {SANDBOX_IPV4_NET}")
    if ipv6 and ipaddress.ip_address(ipv6) not in ipaddress.ip_network(SANDBOX_IPV6_NET):
        raise NetworkError(f"box address {ipv6} is outside {SANDBOX_IPV6_NET}")
    return BoxNet(f"fatbox-{server_id}", f"fvh{server_id}", f"fvp{server_id}", ipv4, ipv6)


def bridge_cmds() -> list[list[str]]:
    """Create the bridge with the host's gateway addresses (addr replace is idempotent)."""
    v4_len = ipaddress.ip_network(SANDBOX_IPV4_NET).prefixlen
    v6_len = ipaddress.ip_network(SANDBOX_IPV6_NET).prefixlen
    return [
        ["ip", "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "addr", "replace", f"{GATEWAY_IPV4}/{v4_len}", "dev", BRIDGE],
        ["ip", "-6", "addr", "replace", f"{GATEWAY_IPV6}/{v6_len}", "dev", BRIDGE, "nodad"],
        ["ip", "link", "set", BRIDGE, "up"],
        # the on-link route for the whole range, also on a bridge that kept the address of an
        # older, narrower range (`addr replace` does not change an address's prefix length)
        ["ip", "-6", "route", "replace", SANDBOX_IPV6_NET, "dev", BRIDGE],
    ]


def box_net_cmds(net: BoxNet) -> list[list[str]]:
    """Namespace, veth pair on the bridge, addresses and on-link routes only."""
    inside = ["ip", "-n", net.netns]
    cmds = [
        ["ip", "netns", "add", net.netns],
        ["ip", "link", "add", net.host_veth, "type", "veth", "peer", "name", net.peer_veth],
        ["ip", "link", "set", net.peer_veth, "netns", net.netns],
        ["ip", "link", "set", net.host_veth, "master", BRIDGE, "up"],
        [*inside, "link", "set", net.peer_veth, "name", BOX_IFACE],
        [*inside, "link", "set", "lo", "up"],
    ]
    if net.ipv4:
        v4_len = ipaddress.ip_network(SANDBOX_IPV4_NET).prefixlen
        cmds.append([*inside, "addr", "add", f"{net.ipv4}/{v4_len}", "dev", BOX_IFACE])
    if net.ipv6:
        v6_len = ipaddress.ip_network(SANDBOX_IPV6_NET).prefixlen
        addr = f"{net.ipv6}/{v6_len}"
        cmds.append([*inside, "-6", "addr", "add", addr, "dev", BOX_IFACE, "nodad"])
    cmds.append([*inside, "link", "set", BOX_IFACE, "up"])
    return cmds


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def _must(argv: Sequence[str]) -> None:
    result = _run(argv)
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise NetworkError(f"`{' '.join(argv)}` failed: {detail[0]}")


def link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", "dev", name]).returncode == 0


def ensure_bridge() -> None:
    """The host bridge with the gateway addresses, created if missing.

    Boxes are created from several threads (and processes) at once: losing the race to
    create the bridge is fine as long as it exists afterwards.
    """
    create, *configure = bridge_cmds()
    if not link_exists(BRIDGE) and _run(create).returncode != 0 and not link_exists(BRIDGE):
        _must(create)  # raises with ip's own message
    for argv in configure:
        _must(argv)


def ensure_box_net(net: BoxNet) -> None:
    """The box's namespace and link, rebuilt from scratch if only part of it exists."""
    ensure_bridge()
    if net.netns_path.exists() and link_exists(net.host_veth):
        return
    remove_box_net(net)
    try:
        for argv in box_net_cmds(net):
            _must(argv)
    except NetworkError:
        remove_box_net(net)
        raise


def remove_box_net(net: BoxNet) -> None:
    """Delete the box's namespace (which takes its veth end along) and the host end if left."""
    if net.netns_path.exists():
        _run(["ip", "netns", "delete", net.netns])
    for name in (net.host_veth, net.peer_veth):
        if link_exists(name):
            _run(["ip", "link", "delete", name])
    if net.netns_path.exists() or link_exists(net.host_veth):
        raise NetworkError(f"could not remove the network of {net.netns}")


def remove_bridge() -> None:
    """Remove the bridge once no box is attached to it (`fatctl sandbox down`)."""
    if not link_exists(BRIDGE):
        return
    ports = _run(["ip", "-o", "link", "show", "master", BRIDGE]).stdout.strip()
    if ports:
        raise NetworkError(f"{BRIDGE} still has boxes attached; delete them first")
    _must(["ip", "link", "delete", BRIDGE])
