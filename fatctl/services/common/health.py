"""Waiting for a box to report itself healthy (`fat-health --json`), the gate every change
to a running box ends with."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from fatctl.errors import FatctlError
from fatctl.remote.commands.services import fat_health

if TYPE_CHECKING:
    from fatctl.pacing.poll import Backoff
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target


def wait_healthy(
    pool: Pool, target: Target, backoff: Backoff, failure: type[FatctlError]
) -> dict[str, object]:
    """The box's report once it says healthy; else `failure` with the last report's tail."""
    last = [""]

    def probe() -> dict[str, object] | None:
        result = pool.get(target).run(fat_health(), timeout=60)
        last[0] = (result.stdout.strip() or result.stderr.strip())[-300:]
        if not result.ok:
            return None
        report = json.loads(result.stdout)
        return report if report.get("healthy") else None

    try:
        return backoff.wait_for(f"health of {target.name}", probe)
    except FatctlError as exc:
        raise failure(f"{exc.one_line()} (last report: {last[0]})") from None
