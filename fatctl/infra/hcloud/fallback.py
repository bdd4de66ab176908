"""Capacity fallback at Hetzner: a server create answered `resource_unavailable` or
`placement_error` (fatctl.infra.capacity) is tried again at the operator's next alternative.
Only a new agent's provisioning falls back (the engine's `apply_fresh`/`apply_new`): the flow
that asked re-points DNS and the agent's record at the addresses the box finally got. A
converge of an existing agent (`apply`) never moves it.

Primary IPs are bound to their location and their names are the agent's (unique per project),
so a try in another location needs a pair of its own there. The asked location's pair may
already be in DNS and the database: it is never released before a server runs elsewhere. While
tries run elsewhere it is held aside (renamed, and relabelled so the agent's lookups skip it),
then released once a box runs elsewhere, or restored when no location has room (the pairs the
tries made elsewhere are released instead), so a rerun finds the addresses DNS points at. Part
of the hcloud engine family (the SDK objects never leave it).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from fatctl.domain import AgentSpec, BoxInfo, ChangeSink, ResourceChange, managed_labels
from fatctl.errors import CloudError
from fatctl.infra.capacity import CAPACITY_CODES, Placement, candidates
from fatctl.infra.hcloud import ops
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.observe import observe

Attempt = Callable[[AgentSpec, str], BoxInfo]

HELD_LABEL = "held-for"  # an agent's asked-location IP set aside while a fallback is tried


@dataclass(frozen=True)
class Held:
    """A primary IP set aside, with the name and labels it goes back to."""

    ip: Any
    name: str
    labels: dict[str, str]
    location: str


def placed(
    h: Hcloud,
    spec: AgentSpec,
    user_data: str,
    fallbacks: tuple[Placement, ...],
    attempts: tuple[Attempt, Attempt],
    emit: ChangeSink,
) -> BoxInfo:
    """The first attempt at the spec's type and location, then the second (adopting what the
    first made) at each fallback while Hetzner answers that it cannot place the server."""
    tried: list[str] = []
    first, adopting = attempts
    asked = spec.location
    held: list[Held] = []
    try:
        for where in candidates(Placement(spec.server_type, spec.location), fallbacks):
            if tried:
                if where.location == asked:
                    release_ips_outside(h, spec.name, asked, emit)
                    restore(h, held, emit)
                elif not held:
                    held = hold_ips_in(h, spec.name, asked, emit)
                release_ips_outside(h, spec.name, where.location, emit)
            attempt = adopting if tried else first
            try:
                info = attempt(replace(spec, server_type=where.server_type,
                                       location=where.location), user_data)  # fmt: skip
            except CloudError as exc:
                if exc.code not in CAPACITY_CODES:
                    raise
                tried.append(f"{where} ({exc.code})")
                continue
            release_held(h, held, emit)  # the box runs elsewhere: the asked pair is not its
            held = []
            return info
    except BaseException:
        with suppress(Exception):  # the first failure is the one to report
            _put_back(h, spec.name, asked, held, emit)
        raise
    _put_back(h, spec.name, asked, held, emit)
    raise CloudError(
        f"Hetzner has no room for agent {spec.name}: tried {', '.join(tried)}; add "
        "alternatives to defaults.fallbacks (type@location) or try again later",
        code="resource_unavailable",
    )


def _put_back(h: Hcloud, name: str, asked: str, held: list[Held], emit: ChangeSink) -> None:
    """No box elsewhere: release what the tries made there and give the asked pair back."""
    if held:
        release_ips_outside(h, name, asked, emit)
        restore(h, held, emit)


def hold_ips_in(h: Hcloud, name: str, location: str, emit: ChangeSink) -> list[Held]:
    """Set aside the agent's unassigned primary IPs in `location`: renamed and relabelled, so
    a pair of the agent's names can be made elsewhere while these addresses stay reserved."""
    observed, bound = observe(h, name)
    held = []
    for family, ip in bound.ips.items():
        seen = observed.ips[family]
        if seen.assignee_id or seen.location != location:
            continue
        aside = managed_labels(**{HELD_LABEL: name})
        h.call("hold primary IP", partial(ip.update, name=f"{seen.name}-held", labels=aside))
        held.append(Held(ip, seen.name, dict(seen.labels), location))
        emit(ResourceChange("primary_ip", seen.name, "update", f"held: {location}"))
    return held


def restore(h: Hcloud, held: list[Held], emit: ChangeSink) -> None:
    """The held IPs take back their names and labels (the agent's lookups find them again)."""
    while held:
        one = held.pop()
        h.call("restore primary IP", partial(one.ip.update, name=one.name, labels=one.labels))
        emit(ResourceChange("primary_ip", one.name, "update", "restored"))


def release_held(h: Hcloud, held: list[Held], emit: ChangeSink) -> None:
    for one in held:
        _release(h, one.ip, one.name, emit, f"released: {one.location}, the box runs elsewhere")


def release_ips_outside(h: Hcloud, name: str, location: str, emit: ChangeSink) -> None:
    """Delete the agent's unassigned primary IPs that are not in `location`."""
    observed, bound = observe(h, name)
    for family, ip in bound.ips.items():
        seen = observed.ips[family]
        if seen.assignee_id or seen.location == location:
            continue
        _release(h, ip, seen.name, emit, f"released: {seen.location}")


def _release(h: Hcloud, ip: Any, name: str, emit: ChangeSink, detail: str) -> None:
    ops.delete_primary_ip(h, ip)
    emit(ResourceChange("primary_ip", name, "delete", detail))
