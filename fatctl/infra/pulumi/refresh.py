"""Read a `pulumi refresh --preview-only` into preview-shaped steps, for drift checks.

Pure: no pulumi import (engine events are read by attribute). `plan_from_steps` in
`preview.py` then folds the steps into a `Plan` like any preview's.
"""

from __future__ import annotations

import re
from typing import Any

# The CLI's words when `--expect-no-changes` is not met ("... but changes occurred/were proposed").
NO_CHANGES_EXPECTED = re.compile(r"no changes were expected", re.IGNORECASE)


def refresh_step_from_event(event: Any) -> dict[str, Any] | None:
    """A refresh's drift as a preview-shaped step, or None for an unchanged resource.

    A refresh reports each resource as op `refresh`; what changed at the cloud comes back as an
    update (with the changed properties in `diffs`) or a delete (gone). Drift is in the
    resource's outputs (what the provider read), so those stand in for the inputs of a preview.
    """
    found = getattr(event, "res_outputs_event", None) or getattr(event, "resource_pre_event", None)
    if found is None:
        return None
    meta = found.metadata
    op = str(getattr(meta.op, "value", meta.op))
    if op == "refresh" and (meta.diffs or meta.detailed_diff):
        op = "update"
    if op in ("refresh", "same", "read"):
        return None

    def state(seen: Any) -> dict[str, Any] | None:
        return {"inputs": dict(seen.outputs or seen.inputs or {})} if seen else None

    return {
        "op": op,
        "urn": meta.urn,
        "oldState": state(meta.old),
        "newState": state(meta.new),
        "diffReasons": list(meta.diffs or []),
        "detailedDiff": {k: {} for k in (meta.detailed_diff or {})},
    }
