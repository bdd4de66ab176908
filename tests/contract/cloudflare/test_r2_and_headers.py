"""R2 temporary credentials (fatctl's `dns/r2_credentials.py`) and the headers every answer
carries: the request id and Cloudflare's rate-limit headers."""

from __future__ import annotations

import re
from typing import Any

import httpx
from cloudflare.types.r2 import TemporaryCredentialCreateResponse

from tests.contract.cloudflare.shapes import conforms, failed, ok

# `"default";r=50;t=30` and `"burst";q=100;w=60`: a quoted name, then integer parameters.
RATELIMIT = re.compile(r'"[^"]+";r=\d+;t=\d+')
POLICY = re.compile(r'"[^"]+";q=\d+;w=\d+')


def r2_body(**override: Any) -> dict[str, Any]:
    body = {"bucket": "fat-agents", "parentAccessKeyId": "parent-key", "ttlSeconds": 3600,
            "permission": "object-read-write", "prefixes": ["agents/a/"]}  # fmt: skip
    return {**body, **override}


def test_r2_temporary_credentials(api: httpx.Client, cf: Any) -> None:
    """`POST /accounts/{account_id}/r2/temp-access-credentials`. The SDK's request
    (`TemporaryCredentialCreateParams`): `bucket`, `parentAccessKeyId` ("Access key ID of the
    parent R2 API token"), `permission` one of admin-read-write, admin-read-only,
    object-read-write, object-read-only, `ttlSeconds` ("up to 604800 seconds (7 days)"),
    optional `prefixes`, `objects`. The answer's `result` conforms to
    `TemporaryCredentialCreateResponse`: accessKeyId, secretAccessKey, sessionToken."""
    path = f"accounts/{cf.account_id}/r2/temp-access-credentials"
    creds = ok(api.post(path, json=r2_body()))
    conforms(TemporaryCredentialCreateResponse, creds)
    assert set(creds) == {"accessKeyId", "secretAccessKey", "sessionToken"}
    assert all(isinstance(v, str) and v for v in creds.values())
    failed(api.post(path, json=r2_body(ttlSeconds=604801)), 400)
    failed(api.post(path, json=r2_body(permission="everything")), 400)
    failed(api.post(f"accounts/{'0' * 32}/r2/temp-access-credentials", json=r2_body()), 403)


def test_every_answer_carries_cloudflares_headers(api: httpx.Client, cf: Any) -> None:
    """developers.cloudflare.com/fundamentals/api/reference/limits, "Rate limiting headers",
    "Headers that are always returned": `Ratelimit` ("the limit name, the remaining quota (r)
    and the time next window resets (t). For example: "default";r=50;t=30") and
    `Ratelimit-Policy` ("the policy name, the total quota (q) and the time window the quota
    applies to (w). For example: "burst";q=100;w=60"); `Retry-After` only "when a rate limit
    has been reached (error code: 429)". Answers also carry `CF-Ray`, Cloudflare's request id.
    The old emulator sent Hetzner's RateLimit-Limit/-Remaining/-Reset instead."""
    zone = cf.zone_id("free.test")
    answers = [
        api.get("zones"),
        api.get(f"zones/{zone}/dns_records"),
        api.post(
            f"zones/{zone}/dns_records",
            json={"type": "A", "name": "h", "ttl": 1, "content": "192.0.2.1"},
        ),
        api.get(f"zones/{zone}/dns_records/{'0' * 32}"),  # an error answer too
    ]
    for answer in answers:
        assert RATELIMIT.fullmatch(answer.headers["Ratelimit"]), answer.headers
        assert POLICY.fullmatch(answer.headers["Ratelimit-Policy"]), answer.headers
        assert answer.headers["CF-Ray"]
        assert "Retry-After" not in answer.headers
        for hetzners in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
            assert hetzners not in answer.headers  # (httpx: case-insensitive)
    assert answers[0].headers["Ratelimit-Policy"] == '"default";q=1200;w=300'


def test_the_429_and_its_block(cf: Any) -> None:
    """Past the quota: HTTP 429, code 971, `Retry-After` in whole seconds, and every call after
    it refused too until the block ends ("all API calls for the next five minutes will be
    blocked, receiving a HTTP 429 response")."""
    cf.set_rate_limit(2, 300.0)
    with httpx.Client(base_url=cf.url + "/", timeout=10.0,
                      headers={"Authorization": f"Bearer {cf.token}"}) as api:  # fmt: skip
        ok(api.get("zones"), listing=True)
        ok(api.get("zones"), listing=True)
        for _ in range(2):
            answer = api.get("zones")
            (error,) = failed(answer, 429)
            assert error["code"] == 971
            assert 295 <= int(answer.headers["Retry-After"]) <= 300
            assert answer.headers["Ratelimit"].startswith('"default";r=0;')
