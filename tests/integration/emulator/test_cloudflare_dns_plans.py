"""fatctl's DNS against Cloudflare zones of both kinds of plan (through the emulator, which keeps
Cloudflare's plan limits: test_cloudflare_limits.py): records owned by their exact comment on a
Free zone, tags too where the plan has them, the records of the older tag scheme still ours, the
inventory finding ours on both plans, and the zone found under a parent of FATCTL_DOMAIN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fatctl.config import Settings
from fatctl.dns.cloudflare_dns import CloudflareDns, zone_candidates
from fatctl.dns.cloudflare_inventory import owned_records
from fatctl.dns.records import ownership_comment
from fatctl.errors import CloudError
from fatctl.pacing.retry import RateBudget
from fatctl.pacing.timing import Timing
from fatctl.sandbox.cloudflare import start_cloudflare_emulator
from fatctl.sensitive import Sensitive

V4, V6 = "203.0.113.7", "2001:db8::7"
OLD_COMMENT = "managed by fatctl for agent {}; changes are overwritten"  # the comment before


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    handle = start_cloudflare_emulator(
        tmp_path / "cf", zones=("free.test", "pro.test", "example.test"),
        zone_plans={"pro.test": "pro"},
    )  # fmt: skip
    try:
        yield handle
    finally:
        handle.stop()


def dns_for(emulator: Any, tmp_path: Path, domain: str, **kw: Any) -> CloudflareDns:
    settings = Settings(tmp_path, "sqlite://", cloudflare_api_token=Sensitive(emulator.token),
                        cloudflare_base_url=emulator.url, domain=domain, **kw)  # fmt: skip
    return CloudflareDns(settings, timing=Timing.instant(), sleep=lambda s: None,
                         budget=RateBudget(f"cf-{domain}"))  # fmt: skip


def named(emulator: Any, fqdn: str) -> list[dict[str, Any]]:
    return sorted((r for r in emulator.records() if r["name"] == fqdn), key=lambda r: r["type"])


def test_a_free_zone_takes_our_records_owned_by_their_comment(
    emulator: Any, tmp_path: Path
) -> None:
    """The old code sent tags to every zone: a Free zone refused them (code 1004, chained 9300
    "DNS record has 2 tags, exceeding the quota of 0.") and provisioning stopped at `dns`."""
    dns = dns_for(emulator, tmp_path, "free.test")
    assert [c.action for c in dns.upsert("alice", V4, V6)] == ["create", "create"]
    records = named(emulator, "alice.free.test")
    assert [(r["type"], r["content"], r["tags"]) for r in records] == [
        ("A", V4, []),
        ("AAAA", V6, []),
    ]
    assert {r["comment"] for r in records} == {ownership_comment("alice")}
    assert {c.action for c in dns.upsert("alice", V4, V6)} == {"same"}
    assert [c.action for c in dns.delete("alice")] == ["delete", "delete"]
    assert named(emulator, "alice.free.test") == []


def test_a_paid_zone_gets_tags_too(emulator: Any, tmp_path: Path) -> None:
    dns = dns_for(emulator, tmp_path, "pro.test")
    dns.upsert("alice", V4, V6)
    for r in named(emulator, "alice.pro.test"):
        assert r["tags"] == ["fatctl", "agent:alice"]
        assert r["comment"] == ownership_comment("alice")
    assert {c.action for c in dns.upsert("alice", V4, V6)} == {"same"}


def test_records_of_the_old_tag_scheme_stay_ours(
    emulator: Any, cloudflare_client_of: Any, tmp_path: Path
) -> None:
    """A fleet already running has records owned by the tags `fatctl`, `agent:<name>` (with the
    old free-text comment): they are adopted, moved to the exact comment, keep their tags, and
    the inventory finds them, as it finds the comment-owned records of a Free zone."""
    client, zone = cloudflare_client_of(emulator), emulator.zone_id("pro.test")
    for rtype, content in (("A", V4), ("AAAA", V6)):
        client.dns.records.create(zone_id=zone, name="old.pro.test", type=rtype, content=content,
                                  ttl=1, tags=["fatctl", "agent:old"],
                                  comment=OLD_COMMENT.format("old"))  # fmt: skip
    client.dns.records.create(zone_id=zone, name="hand.pro.test", type="A", content=V4, ttl=1,
                              comment="fatctl agent=hand, made by a person")  # fmt: skip
    pro = dns_for(emulator, tmp_path, "pro.test")
    assert {r["name"] for r in owned_records(pro)} == {"old.pro.test"}
    assert [c.action for c in pro.upsert("old", V4, V6)] == ["update", "update"]
    for r in named(emulator, "old.pro.test"):
        assert (r["comment"], r["tags"]) == (ownership_comment("old"), ["fatctl", "agent:old"])
    free = dns_for(emulator, tmp_path, "free.test")
    free.upsert("new", V4, "")
    assert [r["name"] for r in owned_records(free)] == ["new.free.test"]
    with pytest.raises(CloudError, match="not owned by fatctl"):
        pro.upsert("hand", V4, "")  # a lookalike comment is not ours


def test_the_zone_is_found_under_a_parent_of_the_domain(emulator: Any, tmp_path: Path) -> None:
    """FATCTL_DOMAIN=agents.example.test lives in the zone example.test. The old lookup asked
    only for a zone named exactly like the domain and failed with `no_zone`."""
    assert zone_candidates("agents.example.test") == ["agents.example.test", "example.test"]
    assert zone_candidates("example.test") == ["example.test"]
    emulator.reset_stats()
    dns = dns_for(emulator, tmp_path, "agents.example.test")
    assert [c.action for c in dns.upsert("alice", V4, V6)] == ["create", "create"]
    assert dns.zone_id() == emulator.zone_id("example.test")
    assert len(named(emulator, "alice.agents.example.test")) == 2
    assert emulator.stats()["calls"]["GET /client/v4/zones"] == 2  # the name, then its parent
    again = dns_for(emulator, tmp_path, "agents.example.test")
    again.upsert("bob", V4, V6)
    assert emulator.stats()["calls"]["GET /client/v4/zones"] == 2  # cached for the process
    with pytest.raises(CloudError, match=r"no zone for agents\.nowhere\.test"):
        dns_for(emulator, tmp_path, "agents.nowhere.test").zone_id()


@pytest.fixture
def cloudflare_client_of() -> Any:
    from cloudflare import Cloudflare

    return lambda h: Cloudflare(api_token=h.token, base_url=h.url, max_retries=0)
