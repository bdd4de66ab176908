"""Zones and DNS records as fatctl uses them: list zones by name, list a zone's records (by exact
name, by comment, paged), create, update (PUT), delete; validated with cloudflare-python's
response models (`types.zones.Zone`, `types.dns.record_response.ARecord`/`AAAARecord`,
`types.dns.RecordDeleteResponse`) and the documented envelope (shapes.py)."""

from __future__ import annotations

from typing import Any

import httpx
from cloudflare.types.dns import RecordDeleteResponse
from cloudflare.types.dns.record_response import AAAARecord, ARecord
from cloudflare.types.zones import Zone

from tests.contract.cloudflare.shapes import conforms, failed, ok

RECORD_MODELS = {"A": ARecord, "AAAA": AAAARecord}


def create(api: httpx.Client, zone: str, **body: Any) -> httpx.Response:
    return api.post(f"zones/{zone}/dns_records", json={"ttl": 1, **body})


def test_zones_list_and_plan(api: httpx.Client, cf: Any) -> None:
    """`GET /zones?name=` (SDK `ZoneListParams.name`: "A domain name"): the zone objects conform
    to `Zone` (which requires id, account, created_on, development_mode, meta, modified_on,
    name, name_servers, owner, plan), with the plan's `legacy_id` naming the plan."""
    zones = ok(api.get("zones", params={"name": "free.test"}), listing=True)
    assert [z["name"] for z in zones] == ["free.test"]
    everything = ok(api.get("zones", params={"per_page": 50}), listing=True)
    for zone in everything:
        conforms(Zone, zone)
    assert {z["name"]: z["plan"]["legacy_id"] for z in everything} == {
        "free.test": "free",
        "pro.test": "pro",
    }
    assert ok(api.get("zones", params={"name": "nowhere.test"}), listing=True) == []


def test_record_lifecycle_conforms(api: httpx.Client, cf: Any) -> None:
    """Create, list (the filters fatctl sends: `name.exact`, `comment.contains`, `per_page`),
    update and delete. A record conforms to the SDK's model: no `zone_id` nor `zone_name`,
    which Cloudflare stopped sending ("After November 30th, 2024, Cloudflare will stop including
    the zone_id and zone_name fields on individual DNS records in API responses",
    developers.cloudflare.com/fundamentals/api/reference/deprecations); the old emulator still
    sent both."""
    zone = cf.zone_id("free.test")
    made = ok(create(api, zone, type="A", name="a.free.test", content="192.0.2.1",
                     comment="fatctl agent=a; x"))  # fmt: skip
    conforms(ARecord, made)
    six = ok(create(api, zone, type="AAAA", name="a", content="2001:db8::1"))
    conforms(AAAARecord, six)
    assert six["name"] == "a.free.test"  # a relative name is completed within the zone
    by_name = ok(api.get(f"zones/{zone}/dns_records", params={"name.exact": "a.free.test"}),
                 listing=True)  # fmt: skip
    assert sorted(r["type"] for r in by_name) == ["A", "AAAA"]
    for record in by_name:
        conforms(RECORD_MODELS[record["type"]], record)
    by_comment = ok(api.get(f"zones/{zone}/dns_records",
                            params={"comment.contains": "FATCTL", "per_page": 5000}),
                    listing=True)  # fmt: skip
    assert [r["id"] for r in by_comment] == [made["id"]]  # comment filters ignore case
    moved = ok(api.put(f"zones/{zone}/dns_records/{made['id']}",
                       json={"type": "A", "name": "a.free.test", "content": "192.0.2.2",
                             "ttl": 1, "comment": made["comment"]}))  # fmt: skip
    conforms(ARecord, moved)
    assert (moved["id"], moved["content"]) == (made["id"], "192.0.2.2")
    gone = ok(api.delete(f"zones/{zone}/dns_records/{made['id']}"))
    conforms(RecordDeleteResponse, gone)
    assert gone == {"id": made["id"]}


def test_pagination_result_info(api: httpx.Client, cf: Any) -> None:
    """`result_info` counts the page (`count`), the whole listing (`total_count`) and the pages
    (`total_pages`); a page past the end is empty, not an error."""
    zone = cf.zone_id("pro.test")
    for i in range(7):
        ok(create(api, zone, type="A", name=f"p{i}", content=f"192.0.2.{i + 1}"))
    answer = api.get(f"zones/{zone}/dns_records", params={"per_page": 5, "page": 2})
    ok(answer, listing=True)
    info = answer.json()["result_info"]
    assert (info["page"], info["per_page"], info["count"]) == (2, 5, 2)
    assert (info["total_count"], info["total_pages"]) == (7, 2)
    assert ok(api.get(f"zones/{zone}/dns_records", params={"per_page": 5, "page": 3}),
              listing=True) == []  # fmt: skip


def test_errors_fatctl_meets(api: httpx.Client, cf: Any) -> None:
    """The error answers fatctl handles, each `{success: false, errors: [{code, message}]}`:
    81044 "Record does not exist." (404; fatctl's delete treats it as done), 7003 for an
    unknown zone (404), 81058 "An identical record already exists." (400), and the plan's
    limits (test_cloudflare_limits.py quotes them): 1004 "DNS Validation Error" with the cause
    9300 in `error_chain` for tags on a Free zone."""
    free, pro = cf.zone_id("free.test"), cf.zone_id("pro.test")
    (missing,) = failed(api.delete(f"zones/{free}/dns_records/{'0' * 32}"), 404)
    assert missing["code"] == 81044
    (no_zone,) = failed(api.get(f"zones/{'0' * 32}/dns_records"), 404)
    assert no_zone["code"] == 7003
    ok(create(api, pro, type="A", name="dup", content="192.0.2.9"))
    (dup,) = failed(create(api, pro, type="A", name="dup", content="192.0.2.9"), 400)
    assert dup["code"] == 81058
    (tags,) = failed(create(api, free, type="A", name="t", content="192.0.2.9", tags=["a:b"]), 400)
    assert (tags["code"], [c["code"] for c in tags["error_chain"]]) == (1004, [9300])
    assert ok(create(api, pro, type="A", name="t", content="192.0.2.9", tags=["a:b"]))["tags"] == [
        "a:b"
    ]
