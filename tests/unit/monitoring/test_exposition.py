"""The /metrics ASGI app, driven in-process through httpx's ASGI transport."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fatctl.monitoring.exposition import metrics_app
from fatctl.monitoring.history import ProbeHistory
from fatctl.monitoring.metrics import Sources, fleet_registry
from fatctl.monitoring.probe import ProbeResult


def get(path: str, root_path: str = "") -> httpx.Response:
    history = ProbeHistory()
    history.record([ProbeResult("alice", True, 200, 0.05)])
    app = metrics_app(fleet_registry(Sources(probes=history, budgets=None)))

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path=root_path)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://fatctl") as client:
            return await client.get(path)

    return asyncio.run(fetch())


def test_metrics_are_served_in_the_text_format() -> None:
    answer = get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'fatctl_probe_up{agent="alice"} 1.0' in answer.text


@pytest.mark.parametrize("path", ["/", "/metricsx", "/other/metrics", "/healthz"])
def test_other_paths_are_not_found(path: str) -> None:
    assert get(path).status_code == 404


def test_mounted_under_metrics_it_answers_there() -> None:
    """Starlette's Mount passes the full path with `root_path` ending in the mount point."""
    assert get("/metrics", root_path="/metrics").status_code == 200
    assert get("/api/metrics", root_path="/api/metrics").status_code == 200
    assert get("/api/metrics/x", root_path="/api/metrics").status_code == 404
