"""The crash harness's checks can fail: a second server with the agent's labels counts as a
duplicate, a record of no agent as a leak, a changed secret and a left lease as problems."""

from __future__ import annotations

from typing import Any

import requests

from tests.reliability.checks import provisioned, secrets_of, strays
from tests.reliability.harness import Lab
from tests.reliability.test_crash_destroy import provision_in_process


def _post(handle: Any, path: str, body: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {handle.token}"}
    resp = requests.post(f"{handle.url}{path}", json=body, headers=auth, timeout=30)
    assert resp.status_code < 300, resp.text


def test_checks_catch_duplicates_leaks_and_changed_secrets(lab: Lab) -> None:
    from fatctl.state.leases import try_acquire

    provision_in_process(lab, "checked")
    before = secrets_of(lab, "checked")
    assert provisioned(lab, "checked", before).problems == []

    labels = {"managed-by": "fatctl", "agent": "checked"}
    server = {"name": "checked-2", "server_type": "cx23", "image": "debian-12",
              "location": "fsn1", "labels": labels}  # fmt: skip
    _post(lab.hetzner, "/servers", server)
    zone = lab.cloudflare.zone_id("sandbox.test")
    record = {"type": "A", "name": "nobody.sandbox.test", "content": "192.0.2.9", "ttl": 60}
    _post(lab.cloudflare, f"/zones/{zone}/dns_records", record)
    assert try_acquire(lab.db, "agent:checked", "someone:1:x", 60.0) is None

    tampered = {**before, "gateway-token": "0" * 64}
    verdict = provisioned(lab, "checked", tampered)
    assert verdict.duplicates == 1
    assert any("secrets changed" in p for p in verdict.problems)
    assert any("leases left" in p for p in verdict.problems)
    # The record, and the two primary IPs Hetzner made for the extra server (unlabelled).
    assert strays(lab, {"checked"}).leaks == 3
