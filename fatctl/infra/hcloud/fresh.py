"""Create a fresh agent's box at Hetzner without looking first: the 10 calls the box needs
(firewall, two primary IPs and their protection, server, its protection and backups, two PTRs)
and no lookups.

Safe without the lookups because Hetzner names are unique per project and the names are the
agent's: whatever an earlier (crashed or half-failed) run made makes its create fail with
`uniqueness_error`, nothing is duplicated, and the engine falls back to its adopt-or-create
path, which finds and adopts it by labels.
"""

from __future__ import annotations

from typing import Any

from fatctl.domain import BoxInfo, ChangeSink, ResourceChange
from fatctl.errors import CloudError
from fatctl.infra.desired import DesiredBox
from fatctl.infra.engine import ReservedAddresses
from fatctl.infra.hcloud import ops
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.converge import create_server, ensure_firewall, ensure_ips
from fatctl.infra.hcloud.observe import Bound, box_ipv6, observe

# What a create of an existing name or with a since-deleted fleet key answers.
FALL_BACK_ON = frozenset({"uniqueness_error", "invalid_input", "not_found"})


def reserve_ips(h: Hcloud, box: DesiredBox, emit: ChangeSink) -> dict[str, Any]:
    """The box's two primary IPs, kept and unassigned, before its server: created without a
    lookup (2 creates, 2 protections), or, when an earlier run made one (its name is taken),
    found by labels and adopted."""
    try:
        return ensure_ips(h, box, Bound(), emit)
    except CloudError as exc:
        if exc.code not in FALL_BACK_ON:
            raise
        _, bound = observe(h, box.server_name)
        return ensure_ips(h, box, bound, emit)


def reserved_addresses(ips: dict[str, Any]) -> ReservedAddresses:
    return ReservedAddresses(
        ipv4=ips["ipv4"].ip,
        ipv6=box_ipv6(ips["ipv6"].ip),
        primary_ipv4_id=str(ips["ipv4"].id),
        primary_ipv6_id=str(ips["ipv6"].id),
    )


def create_fresh(
    h: Hcloud,
    name: str,
    box: DesiredBox,
    keys: list[Any],
    user_data: str,
    emit: ChangeSink,
    ips: dict[str, Any] | None = None,
) -> BoxInfo:
    """Create everything the box needs (the primary IPs unless `ips` reserved them already);
    raises CloudError (see FALL_BACK_ON) on a name taken."""
    nothing = Bound()  # nothing looked up: every create below is a first attempt by name
    firewall = ensure_firewall(h, box, nothing, emit)
    ips = ips or ensure_ips(h, box, nothing, emit)
    server = create_server(h, box, keys, firewall, ips, user_data, read_back=False)
    emit(ResourceChange("server", box.server_name, "create", f"{box.server_type} {box.location}"))
    if box.backups:
        ops.set_backups(h, server, True)
    ops.set_protection(h, server, True)
    ops.set_rdns(h, server, ips, {}, box.rdns)
    for family in ("ipv4", "ipv6"):
        emit(ResourceChange("rdns", f"{box.server_name}-rdns-{family}", "update"))
    return BoxInfo(
        agent=name,
        server_id=str(server.id),
        ipv4=ips["ipv4"].ip,
        ipv6=box_ipv6(ips["ipv6"].ip),
        # create_server waited for the create and start actions, so the box is running.
        status="running",
        server_type=box.server_type,
        location=box.location,
        image=box.image,
        primary_ipv4_id=str(ips["ipv4"].id),
        primary_ipv6_id=str(ips["ipv6"].id),
        firewall_id=str(firewall.id),
        labels=tuple(sorted(box.labels.items())),
    )
