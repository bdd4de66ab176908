"""The fleet at Hetzner in one pass: `fatctl preview` reads every agent's resources with one
label-selector list per kind (servers, firewalls, primary IPs, SSH keys) instead of four calls
per agent, and `fatctl apply` resizes a box step by step (power off, change type, power on),
telling its caller about each step so it can be recorded.

Part of the hcloud engine family (the SDK objects never leave it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hcloud.server_types import ServerType

from fatctl.errors import CloudError, NotFound
from fatctl.infra.desired import ownership_selector
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.keys import list_keys
from fatctl.infra.hcloud.observe import (
    doubled,
    not_replacements,
    seen_firewall,
    seen_ip,
    seen_server,
)
from fatctl.infra.plan import Observed, SeenKey
from fatctl.infra.selector import Selector, managed

FLEET_SELECTOR = managed()
NARROW_UP_TO = 20  # named agents listed by name in the selector; more: list them all
StepFn = Callable[[str, str], None]  # (step, detail)


@dataclass(frozen=True)
class FleetView:
    """What Hetzner holds per agent, and the agents whose resources cannot be told apart."""

    observed: dict[str, Observed] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    calls: int = 0


def _by_agent(items: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        agent = (item.labels or {}).get("agent")
        if agent:
            out[agent].append(item)
    return out


def fleet_selector(names: Sequence[str], whole_fleet: bool) -> Selector:
    """Every fatctl resource, or only the named agents' when a few are named (smaller pages)."""
    if whole_fleet or not names or len(names) > NARROW_UP_TO:
        return FLEET_SELECTOR
    return managed().within("agent", sorted(names))


def observe_fleet(h: Hcloud, names: Sequence[str], *, whole_fleet: bool = True) -> FleetView:
    """One paged list per kind for the whole fleet, grouped by the `agent` label."""
    c = h.client
    selector = fleet_selector(names, whole_fleet)
    # A move's replacement (`op=<id>`) is not the agent's box until promoted, as in `observe`.
    servers = _by_agent(not_replacements(h.listed("list servers", c.servers.get_all, selector)))
    fws = _by_agent(h.listed("list firewalls", c.firewalls.get_all, selector))
    ips = _by_agent(not_replacements(h.listed("list primary IPs", c.primary_ips.get_all, selector)))
    keys = {
        fp: SeenKey(str(k.id), str(k.name), k.public_key, dict(k.labels or {}))
        for fp, k in list_keys(h).items()
    }
    view = FleetView(calls=4)
    for name in names:
        mine_servers, mine_fws, mine_ips = (kind.get(name, []) for kind in (servers, fws, ips))
        problem = doubled(name, mine_servers, mine_fws, mine_ips)
        if problem:
            view.problems[name] = problem
            continue
        view.observed[name] = Observed(
            server=seen_server(mine_servers[0]) if mine_servers else None,
            keys=keys,
            firewall=seen_firewall(mine_fws[0]) if mine_fws else None,
            ips={str(ip.type): seen_ip(ip) for ip in mine_ips},
        )
    return view


def _server(h: Hcloud, name: str) -> Any:
    found = h.listed("find server", h.client.servers.get_all, ownership_selector(name))
    if len(found) != 1:
        raise NotFound(f"agent {name} has {len(found)} servers at Hetzner, expected one")
    return found[0]


def _act(h: Hcloud, doing: str, fn: Callable[[], Any]) -> None:
    result = h.call(doing, fn)
    h.wait(doing, result)


def resize(h: Hcloud, name: str, server_type: str, *, upgrade_disk: bool, step: StepFn) -> bool:
    """Power off, change the type (keeping the disk unless asked), power on again if it was
    running; returns False when the box already has that type. Each step is reported after it
    finished, so a failure names the last one done."""
    server = _server(h, name)
    current = server.server_type.name
    if current == server_type:
        return False
    was_running = server.status == "running"
    if server.status != "off":
        _act(h, f"power off {name}", server.power_off)
        step("power_off", f"was {server.status}")
    change = partial(server.change_type, ServerType(name=server_type), upgrade_disk=upgrade_disk)
    try:
        _act(h, f"resize {name}", change)
    except CloudError:
        if was_running:  # never leave a customer's box off because the new type was refused
            _act(h, f"power on {name}", server.power_on)
            step("power_on", "after a refused resize")
        raise
    disk = "disk upgraded" if upgrade_disk else "disk kept"
    step("change_type", f"{current} -> {server_type}, {disk}")
    if was_running:
        _act(h, f"power on {name}", server.power_on)
        step("power_on", "")
    return True
