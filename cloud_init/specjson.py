"""An `AgentSpec` as JSON and back: for `fatctl render --spec-json` and for tests.

Only the spec's own fields are accepted; an unknown field or a wrong shape is one BadInput line.
`redact_host_keys` swaps the private host keys for a placeholder, which is how `fatctl render`
shows user-data without ever writing a secret to disk.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fatctl.domain import AgentSpec, HostKeyPair, R2Location, ServicePlan
from fatctl.errors import BadInput
from fatctl.serving import model_choice

REDACTED_HOST_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "(not rendered: fatctl provision passes the real key to the server)\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
_TUPLES = ("operator_keys", "customer_keys", "operator_cidrs", "channels")


def spec_to_dict(spec: AgentSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def spec_from_dict(data: Any) -> AgentSpec:
    """Build an AgentSpec from plain JSON data, rejecting unknown or malformed fields."""
    if not isinstance(data, dict):
        raise BadInput("spec JSON must be an object")
    known = {f.name for f in dataclasses.fields(AgentSpec)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadInput(f"unknown AgentSpec field(s): {', '.join(unknown)}")
    values = dict(data)
    try:
        values["plan"] = ServicePlan(values.get("plan", ""))
        for name in _TUPLES:
            if name in values:
                values[name] = tuple(str(v) for v in values[name])
        values["host_keys"] = tuple(HostKeyPair(**k) for k in values.get("host_keys", ()))
        if values.get("r2") is not None:
            values["r2"] = R2Location(**values["r2"])
        if "extra_labels" in values:
            values["extra_labels"] = tuple((str(k), str(v)) for k, v in values["extra_labels"])
        if "senders" in values:
            values["senders"] = tuple((str(k), str(v)) for k, v in values["senders"])
        if values.get("model") is not None:
            model = values["model"]
            values["model"] = model_choice(f"{model['provider']}/{model['model']}",
                                           model.get("base_url", ""))  # fmt: skip
        return AgentSpec(**values)
    except (TypeError, ValueError, KeyError) as exc:
        raise BadInput(f"malformed AgentSpec JSON: {exc}") from exc


def spec_from_json(text: str) -> AgentSpec:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"spec is not JSON: {exc}") from exc
    return spec_from_dict(data)


def redact_host_keys(spec: AgentSpec) -> AgentSpec:
    """The same spec with every host private key replaced by a placeholder."""
    keys = tuple(dataclasses.replace(k, private_key_pem=REDACTED_HOST_KEY) for k in spec.host_keys)
    return dataclasses.replace(spec, host_keys=keys)
