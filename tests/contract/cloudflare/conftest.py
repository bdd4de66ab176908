"""A Cloudflare emulator with a Free and a Pro zone, and a raw HTTP client for it: the contract
is about what goes over the wire, so answers are read as JSON, not through the SDK's parsing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ZONES = ("free.test", "pro.test")


@pytest.fixture
def cf(tmp_path: Path) -> Iterator[Any]:
    from fatctl.sandbox.cloudflare import start_cloudflare_emulator

    handle = start_cloudflare_emulator(tmp_path, zones=ZONES, zone_plans={"pro.test": "pro"})
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def api(cf: Any) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {cf.token}"}
    with httpx.Client(base_url=cf.url + "/", headers=headers, timeout=10.0) as client:
        yield client
