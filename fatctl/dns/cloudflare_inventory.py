"""Every DNS record fatctl owns in the zone, for `fatctl reconcile`, and the deletion of one that
no agent owns any more. A record is ours by its ownership comment, or by the tags of the older
scheme (whose comment also named fatctl), so one listing filtered on the comment containing
`fatctl` finds both on every plan; what is ours is then decided exactly here. Paged by hand: the
SDK's iterator always asks for one more (empty) page, and a large page makes a whole fleet one
request.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fatctl.dns.cloudflare_dns import CloudflareDns
from fatctl.dns.records import OWNER_TAG, record_owner

PER_PAGE = 5000


def owned_records(dns: CloudflareDns) -> list[dict[str, Any]]:
    """Records an agent owns (`records.record_owner`), whatever their name or agent."""
    records = dns.cf.client.dns.records
    zone = dns.zone_id()
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        listing = partial(records.list, zone_id=zone, comment={"contains": OWNER_TAG},
                          per_page=PER_PAGE, page=page)  # fmt: skip
        found = dns.cf.call("list fatctl records", lambda: listing().result)  # noqa: B023
        # Only what really is ours: an answer that ignored the filter holds others'.
        out += [r for r in (x.to_dict() for x in found) if record_owner(r)]
        if len(found) < PER_PAGE:
            return out
        page += 1


# The name reconcile and older callers use.
tagged_records = owned_records


def delete_record(dns: CloudflareDns, record_id: str, what: str) -> None:
    records = dns.cf.client.dns.records
    dns.cf.call(f"delete {what}", partial(records.delete, record_id, zone_id=dns.zone_id()))
