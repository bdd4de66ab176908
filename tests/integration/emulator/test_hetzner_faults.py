"""Injected faults: their observed ratios (loose bounds, seeded), dropped connections,
responses lost after the work was done, 429 bursts with Retry-After, and the admin endpoint."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest


def _http(handle) -> httpx.Client:
    # a fresh connection per request: a pooled one the server just closed would turn into a
    # client-side error that the emulator never saw, skewing the drop counts
    return httpx.Client(
        base_url=handle.url,
        timeout=10.0,
        headers={"Authorization": f"Bearer {handle.token}"},
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def _outcomes(http: httpx.Client, n: int) -> Counter:
    seen: Counter = Counter()
    for _ in range(n):
        try:
            seen[http.get("/locations").status_code] += 1
        except httpx.TransportError:
            seen["dropped"] += 1
    return seen


def test_server_error_ratio(hetzner_emulator):
    hetzner_emulator.set_faults(error_rate=0.3, seed=7)
    with _http(hetzner_emulator) as http:
        seen = _outcomes(http, 400)
    errors = sum(seen[s] for s in (500, 502, 503, 504))
    assert 0.2 < errors / 400 < 0.4, seen
    assert len([s for s in (500, 502, 503, 504) if seen[s]]) >= 3  # the statuses are mixed
    assert seen[200] == 400 - errors


def test_dropped_connections_have_no_response(hetzner_emulator):
    hetzner_emulator.set_faults(drop_rate=0.5, seed=11)
    with _http(hetzner_emulator) as http:
        seen = _outcomes(http, 200)
    assert 0.35 < seen["dropped"] / 200 < 0.65, seen
    assert seen[200] + seen["dropped"] == 200
    assert hetzner_emulator.stats()["events"]["injected_drop"] == seen["dropped"]


def test_lost_response_still_did_the_work(hetzner_emulator):
    hetzner_emulator.set_faults(drop_response_rate=1.0)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEdZxU6tp4v3b8c2xz3dl7M9c5Q8lKfPf7kQyE4gH2Yo k"
    body = {"name": "ops", "public_key": key}
    with _http(hetzner_emulator) as http:
        with pytest.raises(httpx.TransportError):
            http.post("/ssh_keys", json=body)
        hetzner_emulator.clear_faults()
        assert [k["name"] for k in http.get("/ssh_keys").json()["ssh_keys"]] == ["ops"]
        again = http.post("/ssh_keys", json=body)  # the naive retry now collides
        assert again.json()["error"]["code"] == "uniqueness_error"


def test_429_burst_then_recovery(hetzner_emulator):
    hetzner_emulator.set_faults(rate_limit_burst=3, retry_after=7)
    before = int(time.time())
    with _http(hetzner_emulator) as http:
        answers = [http.get("/locations") for _ in range(5)]
    assert [r.status_code for r in answers] == [429, 429, 429, 200, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[0].headers["RateLimit-Remaining"] == "0"
    assert (
        int(answers[0].headers["RateLimit-Reset"]) >= before + 7
    )  # whole seconds, like Retry-After
    assert int(answers[3].headers["RateLimit-Remaining"]) > 0
    assert answers[0].json()["error"]["code"] == "rate_limit_exceeded"


def test_locked_injection_only_hits_mutations(hetzner_emulator):
    hetzner_emulator.set_faults(locked_rate=1.0)
    with _http(hetzner_emulator) as http:
        assert http.get("/servers").status_code == 200
        answer = http.post("/ssh_keys", json={"name": "k", "public_key": "ssh-ed25519 AAAA"})
    assert answer.status_code == 423 and answer.json()["error"]["code"] == "locked"


def test_admin_endpoint_sets_knobs_and_reports_stats(hetzner_emulator):
    admin = hetzner_emulator.admin_url
    with httpx.Client() as http:
        assert http.post(f"{admin}/faults", json={"bogus": 1}).status_code == 400
        assert http.post(f"{admin}/faults", json={"error_rate": 2}).status_code == 400
        knobs = http.post(f"{admin}/faults", json={"error_rate": 1.0, "error_statuses": [503]})
        assert knobs.json()["error_rate"] == 1.0
        with _http(hetzner_emulator) as api:
            assert api.get("/servers").status_code == 503
        stats = http.get(f"{admin}/stats").json()
        assert stats["calls"]["GET /v1/servers"] == 1 and stats["statuses"]["503"] == 1
        http.post(f"{admin}/stats/reset")
        assert http.get(f"{admin}/stats").json()["total"] == 0
