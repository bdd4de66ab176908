"""Capacity fallback at Hetzner: a server create answered `resource_unavailable` or
`placement_error` (fatctl.infra.capacity) is tried again at the operator's next alternative.

Primary IPs are bound to their location, so before a try in another location the IPs the
earlier try made there are released (unassigned, and nothing points at them for long: the
provisioning flow re-points DNS at the addresses the box finally got). Part of the hcloud
engine family (the SDK objects never leave it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fatctl.domain import AgentSpec, BoxInfo, ChangeSink, ResourceChange
from fatctl.errors import CloudError
from fatctl.infra.capacity import CAPACITY_CODES, Placement, candidates
from fatctl.infra.hcloud import ops
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.observe import observe

Attempt = Callable[[AgentSpec, str], BoxInfo]


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
    for where in candidates(Placement(spec.server_type, spec.location), fallbacks):
        if tried:
            release_ips_outside(h, spec.name, where.location, emit)
        attempt = adopting if tried else first
        try:
            return attempt(replace(spec, server_type=where.server_type,
                                   location=where.location), user_data)  # fmt: skip
        except CloudError as exc:
            if exc.code not in CAPACITY_CODES:
                raise
            tried.append(f"{where} ({exc.code})")
    raise CloudError(
        f"Hetzner has no room for agent {spec.name}: tried {', '.join(tried)}; add "
        "alternatives to defaults.fallbacks (type@location) or try again later",
        code="resource_unavailable",
    )


def release_ips_outside(h: Hcloud, name: str, location: str, emit: ChangeSink) -> None:
    """Delete the agent's unassigned primary IPs that are not in `location`."""
    observed, bound = observe(h, name)
    for family, ip in bound.ips.items():
        seen = observed.ips[family]
        if seen.assignee_id or seen.location == location:
            continue
        if (ip.protection or {}).get("delete"):
            ops.act(h, "unprotect primary IP", ip.change_protection, False)
        h.call("delete primary IP", ip.delete)
        emit(ResourceChange("primary_ip", ip.name, "delete", f"released: {seen.location}"))
