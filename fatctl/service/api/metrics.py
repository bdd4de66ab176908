"""`GET /metrics`: the Prometheus exposition of the fleet (`fatctl.monitoring.served`).

It needs a token with the `metrics:read` scope (or `fleet:admin`): the series name every
running agent and say which are down, which is the operator's business, not the internet's,
and Prometheus sends a bearer token natively (`authorization: {credentials_file: ...}` in a
scrape config). A good scrape is not audited (one row every 15 s says nothing); a refused one
is, like any refused request.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fatctl.monitoring.exposition import METRICS_PATH
from fatctl.monitoring.served import served_registry
from fatctl.service.api.auth import require

METRICS_SCOPE = "metrics:read"


def metrics_router(state_url: str) -> APIRouter:
    registry = served_registry(state_url)
    router = APIRouter()

    # A plain `def`: FastAPI runs it on a worker thread, as the collector reads the database.
    @router.get(METRICS_PATH, include_in_schema=False,
                dependencies=[Depends(require(METRICS_SCOPE))])  # fmt: skip
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def audited(path: str, status: int) -> bool:
    """Whether a request gets an audit row: all but a good scrape of the metrics."""
    return not (path == METRICS_PATH and status < 400)
