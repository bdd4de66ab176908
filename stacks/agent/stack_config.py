"""Build an `AgentSpec` from stack configuration, for the hand-run `pulumi preview` path.

The Automation API driver passes a spec directly; this exists so `Pulumi.<stack>.yaml` (keys
under `agent:`) describes the same box. Pure: it takes a lookup function, not pulumi.Config.
"""

from __future__ import annotations

from collections.abc import Callable

from fatctl.domain import AgentSpec, ServicePlan
from fatctl.errors import ConfigError

REQUIRED = ("name", "agentId", "ownerEmail", "domain")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def spec_from_config(get: Callable[[str], str | None]) -> AgentSpec:
    """`get("name")` returns the `agent:name` config value or None."""
    missing = [k for k in REQUIRED if not get(k)]
    if missing:
        raise ConfigError(f"stack config is missing agent:{', agent:'.join(missing)}")
    plan = get("plan") or ServicePlan.MANAGED.value
    if plan not in {p.value for p in ServicePlan}:
        raise ConfigError(f"agent:plan must be managed or byok, not {plan!r}")
    optional = {
        "server_type": get("serverType"),
        "location": get("location"),
        "image": get("image"),
    }
    return AgentSpec(
        name=str(get("name")),
        agent_id=str(get("agentId")),
        owner_email=str(get("ownerEmail")),
        plan=ServicePlan(plan),
        domain=str(get("domain")),
        operator_keys=_split(get("operatorKeys")),
        customer_keys=_split(get("customerKeys")),
        operator_cidrs=_split(get("operatorCidrs")) or ("0.0.0.0/0", "::/0"),
        **{k: v for k, v in optional.items() if v},  # type: ignore[arg-type]
    )
