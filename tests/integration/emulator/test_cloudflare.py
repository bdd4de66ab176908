"""The official cloudflare SDK against the Cloudflare emulator: zones, DNS record CRUD with
comment/tags/proxied/ttl (tags in a Pro zone: Free zones refuse them), filters, pagination that
ends, errors, rate budget, R2 temporary credentials (used against moto's S3), and state across a
restart. The plans' limits and the rate limit's headers and block: test_cloudflare_limits.py."""

from __future__ import annotations

import boto3
import cloudflare
import pytest

from fatctl.sandbox.cloudflare import start_cloudflare_emulator

OWNER = "owner:fatctl"


def _zone(client) -> str:
    return next(iter(client.zones.list(name="sandbox.test"))).id


def _a(client, zone, name, ip, **extra):
    return client.dns.records.create(zone_id=zone, name=name, type="A", content=ip, ttl=60, **extra)


def test_zones_list_by_name(cloudflare_emulator, cloudflare_client):
    zones = list(cloudflare_client.zones.list(name="sandbox.test"))
    assert [(z.name, z.status) for z in zones] == [("sandbox.test", "active")]
    assert zones[0].id == cloudflare_emulator.zone_id("sandbox.test")
    assert list(cloudflare_client.zones.list(name="other.test")) == []


@pytest.fixture
def pro_zone(tmp_path):
    """Tags are a paid-plan feature: the CRUD with tags runs in a Pro zone."""
    handle = start_cloudflare_emulator(
        tmp_path / "pro", zones=("sandbox.test",), zone_plans={"sandbox.test": "pro"}
    )
    try:
        yield handle
    finally:
        handle.stop()


def test_record_crud_with_comment_and_tags(pro_zone):
    cloudflare_emulator = pro_zone
    cloudflare_client = cloudflare.Cloudflare(
        api_token=pro_zone.token, base_url=pro_zone.url, max_retries=0
    )
    zone = _zone(cloudflare_client)
    made = _a(
        cloudflare_client,
        zone,
        "agent-a",
        "10.77.0.2",
        proxied=False,
        comment="agent a, managed by fatctl",
        tags=[OWNER, "agent:agent-a"],
    )
    assert (made.name, made.content, made.ttl, made.proxied) == (
        "agent-a.sandbox.test",
        "10.77.0.2",
        60,
        False,
    )
    assert made.comment == "agent a, managed by fatctl" and made.tags == [OWNER, "agent:agent-a"]
    cloudflare_client.dns.records.create(
        zone_id=zone, name="agent-a", type="AAAA", content="fd77::1:0:0:1", ttl=1, tags=[OWNER]
    )
    mine = list(cloudflare_client.dns.records.list(zone_id=zone, tag={"exact": OWNER}))
    assert sorted(r.type for r in mine) == ["A", "AAAA"]
    only_a = cloudflare_client.dns.records.list(
        zone_id=zone, name={"exact": "agent-a.sandbox.test"}, type="A"
    )
    assert [r.id for r in only_a] == [made.id]
    moved = cloudflare_client.dns.records.update(
        dns_record_id=made.id,
        zone_id=zone,
        name="agent-a",
        type="A",
        content="10.77.0.9",
        ttl=120,
        comment="moved",
        tags=[OWNER],
    )
    assert (moved.content, moved.ttl, moved.comment, moved.tags) == (
        "10.77.0.9",
        120,
        "moved",
        [OWNER],
    )
    proxied = cloudflare_client.dns.records.edit(
        dns_record_id=made.id, zone_id=zone, name="agent-a", type="A", ttl=1, proxied=True
    )
    assert proxied.proxied is True and proxied.content == "10.77.0.9"
    assert cloudflare_client.dns.records.delete(dns_record_id=made.id, zone_id=zone).id == made.id
    assert [r["type"] for r in cloudflare_emulator.records()] == ["AAAA"]


def test_pagination_ends(cloudflare_client):
    zone = _zone(cloudflare_client)
    for i in range(23):
        _a(cloudflare_client, zone, f"n{i:02d}", f"10.77.1.{i + 2}", comment=OWNER)
    first = cloudflare_client.dns.records.list(zone_id=zone, per_page=5)
    assert first.result_info.total_count == 23 and first.result_info.total_pages == 5
    names = [r.name for r in cloudflare_client.dns.records.list(zone_id=zone, per_page=5)]
    assert len(names) == 23 and len(set(names)) == 23  # auto-paging stops after page 5
    last = cloudflare_client.dns.records.list(zone_id=zone, per_page=5, page=5)
    assert last.result_info.count == 3
    assert list(cloudflare_client.dns.records.list(zone_id=zone, per_page=5, page=6).result) == []


def _status(call) -> tuple[int, int]:
    with pytest.raises(cloudflare.APIStatusError) as err:
        call()
    return err.value.status_code, err.value.body["errors"][0]["code"]


def test_errors(cloudflare_emulator, cloudflare_client):
    zone = _zone(cloudflare_client)
    _a(cloudflare_client, zone, "dup", "10.77.0.5")
    assert _status(lambda: _a(cloudflare_client, zone, "dup", "10.77.0.5")) == (400, 81058)
    assert _status(lambda: _a(cloudflare_client, zone, "bad", "not-an-ip")) == (400, 9005)
    assert _status(
        lambda: cloudflare_client.dns.records.create(
            zone_id=zone, name="dup", type="CNAME", content="x.example", ttl=1
        )
    ) == (400, 81053)
    assert _status(
        lambda: cloudflare_client.dns.records.get(dns_record_id="0" * 32, zone_id=zone)
    ) == (404, 81044)
    wrong = cloudflare.Cloudflare(api_token="nope", base_url=cloudflare_emulator.url, max_retries=0)
    with pytest.raises(cloudflare.AuthenticationError):
        list(wrong.zones.list())


def test_rate_budget(tmp_path):
    handle = start_cloudflare_emulator(tmp_path, rate_limit=3)
    try:
        client = cloudflare.Cloudflare(api_token=handle.token, base_url=handle.url, max_retries=0)
        for _ in range(3):
            client.zones.list(name="sandbox.test")
        with pytest.raises(cloudflare.RateLimitError) as err:
            client.zones.list(name="sandbox.test")
        assert int(err.value.response.headers["Retry-After"]) >= 1
        assert err.value.body["errors"][0]["code"] == 971
    finally:
        handle.stop()


def test_r2_temporary_credentials_work_on_moto(cloudflare_emulator, cloudflare_client, s3_server):
    creds = cloudflare_client.r2.temporary_credentials.create(
        account_id=cloudflare_emulator.account_id,
        bucket="agents",
        parent_access_key_id="parent-key",
        permission="object-read-write",
        ttl_seconds=7 * 24 * 3600,
        prefixes=["agents/a1/"],
    )
    assert creds.access_key_id and creds.secret_access_key and creds.session_token
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
    )
    s3.create_bucket(Bucket="agents")
    s3.put_object(Bucket="agents", Key="agents/a1/MEMORY.md", Body=b"# memory\n")
    assert s3.get_object(Bucket="agents", Key="agents/a1/MEMORY.md")["Body"].read() == (
        b"# memory\n"
    )
    import httpx

    issued = httpx.get(f"{cloudflare_emulator.admin_url}/inventory").json()["r2_credentials"]
    assert [(c["id"], c["bucket"], c["prefixes"]) for c in issued] == [
        (creds.access_key_id, "agents", ["agents/a1/"])
    ]
    assert creds.secret_access_key not in str(issued)
    too_long = lambda: cloudflare_client.r2.temporary_credentials.create(  # noqa: E731
        account_id=cloudflare_emulator.account_id,
        bucket="agents",
        parent_access_key_id="p",
        permission="object-read-write",
        ttl_seconds=7 * 24 * 3600 + 1,
    )
    assert _status(too_long)[0] == 400


def test_records_survive_restart(tmp_path):
    first = start_cloudflare_emulator(tmp_path)
    client = cloudflare.Cloudflare(api_token=first.token, base_url=first.url, max_retries=0)
    zone = _zone(client)
    _a(client, zone, "kept", "10.77.0.7", comment=OWNER)
    first.stop()
    second = start_cloudflare_emulator(tmp_path)
    try:
        client = cloudflare.Cloudflare(api_token=second.token, base_url=second.url, max_retries=0)
        assert _zone(client) == zone
        assert [r.name for r in client.dns.records.list(zone_id=zone)] == ["kept.sandbox.test"]
    finally:
        second.stop()


def test_faults_and_stats(cloudflare_emulator, cloudflare_client):
    zone = _zone(cloudflare_client)
    cloudflare_emulator.reset_stats()
    cloudflare_emulator.set_faults(error_rate=1.0, error_statuses=[500])
    with pytest.raises(cloudflare.InternalServerError):
        _a(cloudflare_client, zone, "x", "10.77.0.9")
    cloudflare_emulator.set_faults(error_rate=0.0, rate_limit_burst=1, retry_after=4)
    with pytest.raises(cloudflare.RateLimitError) as err:
        list(cloudflare_client.dns.records.list(zone_id=zone))
    assert err.value.response.headers["Retry-After"] == "4"
    cloudflare_emulator.set_faults(drop_rate=1.0)
    with pytest.raises(cloudflare.APIConnectionError):
        list(cloudflare_client.dns.records.list(zone_id=zone))
    cloudflare_emulator.clear_faults()
    assert cloudflare_emulator.records() == []  # the 500 was answered before any work
    stats = cloudflare_emulator.stats()
    assert stats["calls"] == {
        "POST /client/v4/zones/{id}/dns_records": 1,
        "GET /client/v4/zones/{id}/dns_records": 2,
    }
    assert stats["rate_limited"] == 1 and stats["events"]["injected_drop"] == 1
    assert stats["budget"]["limit"] == 1200


def test_module_main(tmp_path):
    import json
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fatctl.sandbox.cloudflare",
            "--state-dir",
            str(tmp_path),
            "--zone",
            "agents.test",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        json.loads(proc.stdout.readline())
        info = json.loads((tmp_path / "cloudflare.endpoint.json").read_text())
        client = cloudflare.Cloudflare(api_token=info["token"], base_url=info["url"], max_retries=0)
        assert [z.id for z in client.zones.list(name="agents.test")] == [
            info["zones"]["agents.test"]
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
