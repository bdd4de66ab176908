"""The Cloudflare emulator keeps the limits real Cloudflare keeps: a zone's plan (advertised in
the zone object) and its DNS quotas, and the global API rate limit with its headers and its
five-minute block. Each test quotes what it follows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudflare
import pytest

from fatctl.sandbox.cloudflare import start_cloudflare_emulator


@pytest.fixture
def two_plans(tmp_path: Path) -> Iterator[Any]:
    handle = start_cloudflare_emulator(
        tmp_path, zones=("free.test", "pro.test"), zone_plans={"pro.test": "pro"}
    )
    try:
        yield handle
    finally:
        handle.stop()


def client_of(handle: Any) -> cloudflare.Cloudflare:
    return cloudflare.Cloudflare(api_token=handle.token, base_url=handle.url, max_retries=0)


def a_record(client: cloudflare.Cloudflare, zone: str, name: str, ip: str, **extra: Any) -> Any:
    return client.dns.records.create(zone_id=zone, name=name, type="A", content=ip, ttl=1, **extra)


def test_zones_advertise_their_plan(two_plans: Any) -> None:
    """Cloudflare's zone object carries `plan` {id, name, price, currency, frequency,
    is_subscribed, can_subscribe, legacy_id, legacy_discount, externally_managed} (API
    reference, Zone Details); a Free zone's plan is "Free Website", legacy_id "free"."""
    plans = {z.name: z.plan for z in client_of(two_plans).zones.list()}
    assert plans["free.test"] and plans["pro.test"]
    assert (plans["free.test"].legacy_id, plans["free.test"].name) == ("free", "Free Website")
    assert (plans["pro.test"].legacy_id, plans["pro.test"].name) == ("pro", "Pro Website")


def test_free_zones_refuse_record_tags(two_plans: Any) -> None:
    """Tags are a paid-plan feature. A Free zone answers a record with a tag with
    `{"code":1004,"message":"DNS Validation Error","error_chain":[{"code":9300,
    "message":"DNS record has 1 tags, exceeding the quota of 0."}]}` (quoted from Cloudflare's
    answer in kubernetes-sigs/external-dns#3706 and cloudflare/terraform-provider-cloudflare
    #3217). The old emulator accepted them."""
    client = client_of(two_plans)
    free, pro = two_plans.zone_id("free.test"), two_plans.zone_id("pro.test")
    with pytest.raises(cloudflare.BadRequestError) as err:
        a_record(client, free, "a", "192.0.2.1", tags=["fatctl"])
    (error,) = err.value.body["errors"]
    assert (error["code"], error["message"]) == (1004, "DNS Validation Error")
    assert error["error_chain"] == [
        {"code": 9300, "message": "DNS record has 1 tags, exceeding the quota of 0."}
    ]
    plain = a_record(client, free, "a", "192.0.2.1", comment="fatctl agent=a")
    with pytest.raises(cloudflare.BadRequestError):  # an update is held to the same quota
        client.dns.records.update(plain.id, zone_id=free, name="a", type="A", content="192.0.2.1",
                                  ttl=1, tags=["fatctl", "agent:a"])  # fmt: skip
    assert a_record(client, pro, "a", "192.0.2.1", tags=["fatctl", "agent:a"]).tags == [
        "fatctl",
        "agent:a",
    ]


def test_free_zones_hold_200_records(two_plans: Any) -> None:
    """developers.cloudflare.com/dns/manage-dns-records (DNS records quota): "Free zones created
    on or after 2024-09-01 00:00:00 UTC have a limit of 200 DNS records"; "Pro, Business, and
    Enterprise have a limit of 3,500 DNS records". Past it Cloudflare answers code 81045
    "Record quota exceeded." (quoted in js-org/js.org#2873)."""
    client = client_of(two_plans)
    free, pro = two_plans.zone_id("free.test"), two_plans.zone_id("pro.test")
    for i in range(200):
        a_record(client, free, f"n{i}", f"10.1.{i // 250}.{i % 250 + 1}")
    with pytest.raises(cloudflare.BadRequestError) as err:
        a_record(client, free, "one-more", "10.2.0.1")
    assert err.value.body["errors"][0] == {"code": 81045, "message": "Record quota exceeded."}
    a_record(client, pro, "one-more", "10.2.0.1")  # another zone, another quota
    first = client.dns.records.list(zone_id=free, per_page=5).result[0]
    moved = client.dns.records.update(first.id, zone_id=free, name=first.name, type="A",
                                      content="10.3.0.1", ttl=1)  # fmt: skip
    assert moved.content == "10.3.0.1"  # an update adds no record: within the quota
    client.dns.records.delete(first.id, zone_id=free)
    a_record(client, free, "one-more", "10.2.0.1")  # room again


def test_rate_limit_headers_are_cloudflares(tmp_path: Path) -> None:
    """developers.cloudflare.com/fundamentals/api/reference/limits, "Rate limiting headers":
    "Ratelimit: List of service limit items, composed of the limit name, the remaining quota (r)
    and the time next window resets (t). For example: "default";r=50;t=30" and
    "Ratelimit-Policy: List of quota policy items, composed of the policy name, the total quota
    (q) and the time window the quota applies to (w). For example: "burst";q=100;w=60". The old
    emulator sent Hetzner's RateLimit-Limit/-Remaining/-Reset."""
    handle = start_cloudflare_emulator(tmp_path, rate_limit=10)
    try:
        answer = client_of(handle).zones.with_raw_response.list()
        assert answer.headers["Ratelimit"] == f'"default";r=9;t={_t(answer.headers)}'
        assert 299 <= _t(answer.headers) <= 301
        assert answer.headers["Ratelimit-Policy"] == '"default";q=10;w=300'
        assert "RateLimit-Limit" not in answer.headers and "Retry-After" not in answer.headers
    finally:
        handle.stop()


def _t(headers: Any) -> int:
    return int(headers["Ratelimit"].rpartition("t=")[2])


def test_exceeding_the_limit_blocks_every_call_for_the_block(tmp_path: Path) -> None:
    """Same page: "The global rate limit for the Cloudflare API is 1,200 requests per five
    minute period per user ... If you exceed this limit, all API calls for the next five minutes
    will be blocked, receiving a HTTP 429 response", and "retry-after: The number of seconds,
    rounded up, until more capacity is available ... only returned when the request has
    exceeded the rate limit". The block is five minutes unless a test shortens it (here, to a
    duration no test waits for: what is checked is that it holds, not that it ends)."""
    handle = start_cloudflare_emulator(tmp_path, rate_limit=3, block_seconds=600)
    try:
        client = client_of(handle)
        for _ in range(3):
            client.zones.list()
        refused = []
        for _ in range(3):
            with pytest.raises(cloudflare.RateLimitError) as err:
                client.zones.list()
            refused.append(err.value.response.headers)
        assert all(590 <= int(h["Retry-After"]) <= 600 for h in refused)
        assert all(h["Ratelimit"].startswith('"default";r=0;') for h in refused)
        assert err.value.body["errors"][0]["code"] == 971
        assert handle.stats()["budget"]["refused"] == 3
    finally:
        handle.stop()


def test_the_block_ends_with_a_fresh_window() -> None:
    """Unit check of the window with an injected clock: the block holds for `block_seconds`,
    then the whole quota is there again (Cloudflare's block and window are both five
    minutes)."""
    from fatctl.sandbox.apiemu.ratelimit import BlockingWindow

    now = [1000.0]
    window = BlockingWindow(2, 300.0, clock=lambda: now[0])
    assert [window.take().allowed for _ in range(3)] == [True, True, False]
    now[0] += 299.0
    assert not window.take().allowed  # still blocked, though the first window is over
    now[0] += 1.0
    assert [window.take().allowed for _ in range(3)] == [True, True, False]
    assert window.refused == 3


def test_an_injected_429_is_followed_by_a_fresh_window_as_a_real_one_is() -> None:
    """A 429 burst the fault knobs inject says `r=0;t=<retry_after>`; as after Cloudflare's own
    block, the quota is whole again when `t` has passed (a client believing the headers must
    not be refused for it).

    Cloudflare, Rate limits (developers.cloudflare.com/fundamentals/api/reference/limits): "The
    global rate limit for the Cloudflare API is 1,200 requests per five minute period per user
    ... If you exceed this limit, all API calls for the next five minutes will be blocked", and
    "Ratelimit: List of service limit items, composed of the limit name, the remaining quota (r)
    and the time next window resets (t). For example: "default";r=50;t=30": the block is the
    rest of that window, and at `t` the next window starts with the whole quota."""
    from fatctl.sandbox.apiemu.ratelimit import BlockingWindow

    now = [1000.0]
    window = BlockingWindow(3, 300.0, clock=lambda: now[0])
    window.take()
    window.take()
    headers = dict(window.exhausted(4, now[0]))
    assert headers[b"ratelimit"] == b'"default";r=0;t=4'
    now[0] += 4.0
    assert [window.take().allowed for _ in range(4)] == [True, True, True, False]
