"""Zone plans as Cloudflare advertises them (the zone object's `plan`) and the DNS limits that
come with each, enforced on record writes.

Documented limits followed here:
- tags are a paid-plan feature: a Free zone answers a record carrying tags with
  `{"code": 1004, "message": "DNS Validation Error", "error_chain": [{"code": 9300,
  "message": "DNS record has 1 tags, exceeding the quota of 0."}]}` (the answer users quote in
  kubernetes-sigs/external-dns#3706 and cloudflare/terraform-provider-cloudflare#3217);
- records per zone (developers.cloudflare.com/dns/manage-dns-records, "DNS records quota"):
  "Free zones created on or after 2024-09-01 00:00:00 UTC have a limit of 200 DNS records";
  "Pro, Business, and Enterprise have a limit of 3,500 DNS records". Past the quota Cloudflare
  answers code 81045 "Record quota exceeded.".
No number for the paid plans' tags per record was found documented: they are not capped here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fatctl.sandbox.cloudflare.errors import CfError


@dataclass(frozen=True)
class Plan:
    legacy_id: str  # free, pro, business, enterprise: what the zone's `plan.legacy_id` says
    name: str
    plan_id: str
    price: int
    tags_quota: int | None  # tags per record; None: not capped
    records_quota: int


# Free's id is the one Cloudflare's Free plan carries; the paid plans' ids are the emulator's own.
PLANS = {
    p.legacy_id: p
    for p in (
        Plan("free", "Free Website", "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", 0, 0, 200),
        Plan("pro", "Pro Website", "a577b510288e82b26486fa3ea6b9b95b", 25, None, 3500),
        Plan("business", "Business Website", "bf2b8e2c1c8b4e9d9c2f0f1a8d2e6b31", 250, None, 3500),
        Plan("enterprise", "Enterprise Website", "94f3b7b768b0458b56d2cac4fe5ec0f9", 0, None,
             3500),
    )
}  # fmt: skip
DEFAULT_PLAN = "free"


def plan_named(legacy_id: str) -> Plan:
    try:
        return PLANS[legacy_id.lower()]
    except KeyError:
        raise ValueError(f"unknown zone plan {legacy_id!r}: one of {sorted(PLANS)}") from None


def plan_doc(plan: Plan) -> dict[str, Any]:
    """The zone object's `plan`, in the fields Cloudflare's zone details return."""
    return {
        "id": plan.plan_id,
        "name": plan.name,
        "price": plan.price,
        "currency": "USD",
        "frequency": "monthly" if plan.price else "",
        "is_subscribed": plan.legacy_id != "free",
        "can_subscribe": False,
        "legacy_id": plan.legacy_id,
        "legacy_discount": False,
        "externally_managed": False,
    }


def zone_plan(zone: dict[str, Any]) -> Plan:
    return plan_named(str(zone.get("plan", {}).get("legacy_id") or DEFAULT_PLAN))


def check_tags_quota(plan: Plan, tags: list[str]) -> None:
    if plan.tags_quota is not None and len(tags) > plan.tags_quota:
        raise dns_validation_error(
            9300, f"DNS record has {len(tags)} tags, exceeding the quota of {plan.tags_quota}."
        )


def check_records_quota(plan: Plan, records_in_zone: int) -> None:
    """Before a create: the zone already holds `records_in_zone` records."""
    if records_in_zone >= plan.records_quota:
        raise CfError(400, 81045, "Record quota exceeded.")


def dns_validation_error(code: int, message: str) -> CfError:
    """Cloudflare's wrapper for a record that breaks a rule: 1004 with the cause chained."""
    return CfError(400, 1004, "DNS Validation Error", chain=[{"code": code, "message": message}])
