"""Read a Pulumi preview into a `Plan`: the `pulumi preview --json` document (what CI saves and
`fatctl preview` reuses) or the equivalent steps collected from Automation API engine events.

Pure: no pulumi import. The document's shape is `{"steps": [{"op", "urn", "oldState",
"newState", "diffReasons", "replaceReasons", "detailedDiff"}], "changeSummary": {...}}`.
A replacement appears as up to three steps (replace, create-replacement, delete-replaced) and
is counted once; steps on the stack itself, providers, reads and refreshes are not resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from fatctl.domain import Plan, ResourceChange
from fatctl.errors import BadInput

KINDS = {
    "server": "server",
    "primaryIp": "primary_ip",
    "firewall": "firewall",
    "sshKey": "ssh_key",
    "rdns": "rdns",
    "firewallAttachment": "firewall",
}
OPS = {
    "same": "same",
    "create": "create",
    "update": "update",
    "delete": "delete",
    "replace": "replace",
    "create-replacement": "replace",
    "delete-replaced": "replace",
    "import": "create",
    "import-replacement": "replace",
    "discard": "delete",
    "discard-replaced": "replace",
}
SKIPPED_OPS = {"read", "read-replacement", "refresh", "remove-pending-replace"}


def split_urn(urn: str) -> tuple[str, str, str]:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` -> (stack, type, name)."""
    parts = urn.split("::")
    if len(parts) < 4 or not parts[0].startswith("urn:pulumi:"):
        raise BadInput(f"not a Pulumi URN: {urn[:80]}")
    stack = parts[0][len("urn:pulumi:") :]
    qualified_type = parts[2].split("$")[-1]  # parent types come first, joined by `$`
    return stack, qualified_type, "::".join(parts[3:])


def kind_of(type_token: str) -> str | None:
    """`hcloud:index/server:Server` -> "server"; None for stacks and providers."""
    if not type_token.startswith("hcloud:") or ":" not in type_token[7:]:
        return None
    module_path = type_token.split(":")[1]
    return KINDS.get(module_path.split("/")[-1], module_path.split("/")[-1])


def _inputs(step: Mapping[str, Any], which: str) -> Mapping[str, Any]:
    state = step.get(which) or {}
    return state.get("inputs") or {}


def _detail(step: Mapping[str, Any]) -> str:
    """`serverType cx23 -> cx33`, or the names of the changed properties."""
    keys = list(step.get("replaceReasons") or []) or list(step.get("diffReasons") or [])
    keys = keys or sorted((step.get("detailedDiff") or {}).keys())
    old, new = _inputs(step, "oldState"), _inputs(step, "newState")
    out = []
    for key in keys:
        top = str(key).split(".")[0].split("[")[0]
        before, after = old.get(top), new.get(top)
        simple = all(isinstance(v, str | int | float | bool) for v in (before, after))
        out.append(f"{_snake(top)} {before} -> {after}" if simple else _snake(top))
    return "; ".join(out)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def plan_from_steps(steps: Iterable[Mapping[str, Any]], agent: str = "") -> Plan:
    """Fold preview steps into one change per resource (a replacement's halves count once)."""
    changes: dict[tuple[str, str], ResourceChange] = {}
    for step in steps:
        op = str(step.get("op", ""))
        if op in SKIPPED_OPS:
            continue
        stack, type_token, name = split_urn(str(step.get("urn", "")))
        kind = kind_of(type_token)
        if kind is None:
            continue
        agent = agent or stack.removeprefix("agent-")
        action = OPS.get(op, "update")  # an op we do not know counts as a change, never as none
        key = (kind, name)
        if key in changes and changes[key].action == "replace":
            continue
        detail = _detail(step) if action in ("update", "replace") else ""
        changes[key] = ResourceChange(kind=kind, name=name, action=action, detail=detail)
    return Plan(agent=agent, changes=tuple(changes.values()))


def plan_from_preview_json(text: str | Mapping[str, Any], agent: str = "") -> Plan:
    """Parse a `pulumi preview --json` document (text or already-decoded)."""
    if isinstance(text, str):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(
                f"not a pulumi preview JSON document: {exc.msg} at line {exc.lineno}"
            ) from None
    else:
        doc = text
    if not isinstance(doc, Mapping) or not isinstance(doc.get("steps"), list):
        raise BadInput("not a pulumi preview JSON document: no `steps` list")
    return plan_from_steps(doc["steps"], agent)


def summary(plan: Plan) -> dict[str, object]:
    """Counts per action, for tables and CI: {"agent", "create", "update", "replace", "delete"}."""
    row: dict[str, object] = {"agent": plan.agent}
    for action in ("create", "update", "replace", "delete"):
        row[action] = plan.count(action)
    row["changes"] = plan.has_changes
    return row
