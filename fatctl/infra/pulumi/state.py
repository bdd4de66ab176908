"""Stack-state surgery for stacks made by an older agent program, which owned its SSH keys.

Keys are fleet-level now (fatctl/infra/hcloud/keys.py): the program no longer declares them, so
the next `up` or `destroy` of an old stack would delete keys other agents share. Before any
operation the engine drops them from the stack's state (Pulumi forgets them, Hetzner keeps them)
and fatctl's key step adopts them by fingerprint. Pure: works on the exported deployment dict.
"""

from __future__ import annotations

import copy
from typing import Any

SSH_KEY_TYPE = "hcloud:index/sshKey:SshKey"


def _without(urns: list[str], dropped: set[str]) -> list[str]:
    return [u for u in urns if u not in dropped]


def release_owned_keys(deployment: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The deployment without SshKey resources (and references to them); the dropped URNs."""
    resources = deployment.get("resources") or []
    dropped = {r["urn"] for r in resources if r.get("type") == SSH_KEY_TYPE}
    if not dropped:
        return deployment, []
    kept = []
    for resource in copy.deepcopy(resources):
        if resource["urn"] in dropped:
            continue
        # The server depended on the keys; a dangling reference makes Pulumi reject the state.
        if "dependencies" in resource:
            resource["dependencies"] = _without(resource["dependencies"], dropped)
        deps = resource.get("propertyDependencies") or {}
        for prop, urns in deps.items():
            deps[prop] = _without(urns, dropped)
        kept.append(resource)
    return {**deployment, "resources": kept}, sorted(dropped)
