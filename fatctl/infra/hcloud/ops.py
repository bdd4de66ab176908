"""Operational actions on one existing server (power, rescue, snapshot, rebuild, resize, rDNS),
each waiting for its Hetzner action to finish. Used by the hcloud engine and, for the same
actions, by the Pulumi engine (Pulumi has no verbs for them)."""

from __future__ import annotations

from functools import partial
from typing import Any

from hcloud.images import Image
from hcloud.server_types import ServerType

from fatctl.errors import CloudError
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.observe import box_ipv6

# How many times a call refused as `locked` waits out the server's running actions and tries
# again before the refusal stands.
LOCK_ROUNDS = 3


def act(h: Hcloud, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a server method that returns an action (or a response with one) and wait for it.

    `locked` means an action still runs on the server: often one of ours whose answer was lost,
    so nobody waited for it. Retries on a timer only spend attempts on a lock that lifts when
    that action ends, so once they give up, wait for the server's running actions and ask again."""
    owner = getattr(fn, "__self__", None)
    for round_ in range(LOCK_ROUNDS):
        try:
            result = h.call(doing, partial(fn, *args, **kwargs))
            break
        except CloudError as err:
            if err.code != "locked" or owner is None or round_ == LOCK_ROUNDS - 1:
                raise
            wait_for_running_actions(h, doing, owner)
    h.wait(doing, result)
    return result


def wait_for_running_actions(h: Hcloud, doing: str, server: Any) -> None:
    running = h.call(
        f"{doing}: list running actions", lambda: server.get_actions(status=["running"])
    )
    for action in running:
        h.wait(doing, action)


def set_protection(h: Hcloud, server: Any, on: bool) -> None:
    protection = server.protection or {}
    if bool(protection.get("delete")) != on or bool(protection.get("rebuild")) != on:
        act(h, "change server protection", server.change_protection, delete=on, rebuild=on)


def delete_primary_ip(h: Hcloud, ip: Any) -> None:
    """A primary IP released: its delete protection lifted first if set. It must be unassigned
    (Hetzner answers 422 `must_be_unassigned` since 1 May 2026), so delete its server first."""
    if (ip.protection or {}).get("delete"):
        act(h, "unprotect primary IP", ip.change_protection, False)
    h.call("delete primary IP", ip.delete)


def power_on(h: Hcloud, server: Any) -> None:
    if server.status != "running":
        act(h, f"power on {server.name}", server.power_on)


def power_off(h: Hcloud, server: Any) -> None:
    if server.status != "off":
        act(h, f"power off {server.name}", server.power_off)


def reboot(h: Hcloud, server: Any) -> None:
    act(h, f"reboot {server.name}", server.reboot)


def enable_rescue(h: Hcloud, server: Any, key_ids: list[int]) -> None:
    """Rescue with our keys only: the root password Hetzner returns is dropped, never shown."""
    act(
        h, f"enable rescue on {server.name}", server.enable_rescue, type="linux64", ssh_keys=key_ids
    )


def snapshot(h: Hcloud, server: Any, description: str, labels: dict[str, str]) -> str:
    resp = act(
        h,
        f"snapshot {server.name}",
        server.create_image,
        description=description,
        type="snapshot",
        labels=labels,
    )
    return str(resp.image.id)


def _image(ref: str) -> Image:
    return Image(id=int(ref)) if ref.isdigit() else Image(name=ref)


def rebuild(h: Hcloud, server: Any, image: str, user_data: str = "") -> None:
    """Reinstall in place: same server, so the same primary IPs; protection lifted only for it."""
    was_protected = bool((server.protection or {}).get("rebuild"))
    if was_protected:
        act(h, "lift rebuild protection", server.change_protection, rebuild=False)
    try:
        act(h, f"rebuild {server.name}", server.rebuild, _image(image), user_data=user_data or None)
    finally:
        if was_protected:
            act(h, "restore rebuild protection", server.change_protection, rebuild=True)


def change_type(h: Hcloud, server: Any, server_type: str) -> None:
    """Resize keeping the disk (so a later downsize stays possible); the box is started again
    only if it was running."""
    was_running = server.status == "running"
    power_off(h, server)
    act(
        h,
        f"resize {server.name}",
        server.change_type,
        ServerType(name=server_type),
        upgrade_disk=False,
    )
    if was_running:
        act(h, f"power on {server.name}", server.power_on)


def set_backups(h: Hcloud, server: Any, enabled: bool) -> None:
    if enabled:
        act(h, f"enable backups on {server.name}", server.enable_backup)
    else:
        act(h, f"disable backups on {server.name}", server.disable_backup)


def set_rdns(
    h: Hcloud, server: Any, ips: dict[str, Any], seen_ptrs: dict[str, str], ptr: str
) -> bool:
    """Point both IPs' reverse DNS at `ptr`; returns whether anything changed."""
    changed = False
    for family, ip in ips.items():
        address = ip.ip if family == "ipv4" else box_ipv6(ip.ip)
        if seen_ptrs.get(family) != ptr:
            act(h, f"set reverse DNS for {family}", server.change_dns_ptr, address, ptr)
            changed = True
    return changed
