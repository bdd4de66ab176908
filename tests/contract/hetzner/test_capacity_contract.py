"""The emulator's sold-out answers (the `sold_out` fault knob, issue 17) against Hetzner's
OpenAPI document: "| `412` | `resource_unavailable` | The requested resource is currently
unavailable (e.g. not available for order). |" in the general table, and "| `422` |
`placement_error` | An error during the placement occurred |" among "Create a Server"'s
operation-specific errors; each status documented for its code, each body the error schema."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.contract.hetzner.recorder import Exchange, violations


@pytest.mark.parametrize(("code", "status"), [("resource_unavailable", 412),
                                              ("placement_error", 422)])  # fmt: skip
def test_a_sold_out_create_answers_as_documented(
    hetzner_emulator: Any, code: str, status: int
) -> None:
    hetzner_emulator.set_faults(sold_out={"*@fsn1": code})
    body = {"name": "full", "server_type": "cx23", "image": "debian-12", "location": "fsn1"}
    answer = httpx.post(f"{hetzner_emulator.url}/servers", json=body, timeout=30,
                        headers={"Authorization": f"Bearer {hetzner_emulator.token}"})  # fmt: skip
    exchange = Exchange("POST", "/servers", body, answer.status_code, answer.json(), {})
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert violations(exchange) == []
    inventory = hetzner_emulator.inventory()  # refused whole: no server, no primary IP made
    assert not inventory.get("servers") and not inventory.get("primary_ips")
