"""The admin endpoints every emulator mounts outside its API prefix: fault knobs and stats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Body, FastAPI, HTTPException

from fatctl.sandbox.apiemu.faults import FaultState
from fatctl.sandbox.apiemu.ratelimit import Limiter
from fatctl.sandbox.apiemu.stats import Stats

ADMIN_PREFIX = "/__sandbox"


def stats_with_budget(stats: Stats, bucket: Limiter) -> dict[str, Any]:
    budget = bucket.peek()
    return {
        **stats.snapshot(),
        "budget": {
            "limit": budget.limit,
            "remaining": budget.remaining,
            "reset_at": budget.reset_at,
            "refused": bucket.refused,
            "lowest_remaining": bucket.lowest,
        },
    }


def mount_admin(
    app: FastAPI,
    faults: FaultState,
    stats: Stats,
    bucket: Limiter,
    inventory: Callable[[], dict[str, Any]],
) -> None:
    """Mount the admin endpoints; `inventory` lists what the emulated cloud holds (for leak
    checks that must not spend the API's rate budget nor show up in its call counts)."""

    @app.get(f"{ADMIN_PREFIX}/inventory")
    def get_inventory() -> dict[str, Any]:
        return inventory()

    @app.get(f"{ADMIN_PREFIX}/faults")
    def get_faults() -> dict[str, Any]:
        return faults.config.as_dict()

    @app.post(f"{ADMIN_PREFIX}/faults")
    def set_faults(changes: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        try:
            faults.update(changes)
        except (ValueError, TypeError) as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        return faults.config.as_dict()

    @app.get(f"{ADMIN_PREFIX}/stats")
    def get_stats() -> dict[str, Any]:
        return stats_with_budget(stats, bucket)

    @app.post(f"{ADMIN_PREFIX}/stats/reset")
    def reset_stats() -> dict[str, Any]:
        stats.reset()
        return stats.snapshot()

    @app.get(f"{ADMIN_PREFIX}/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}
