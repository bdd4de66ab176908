"""Run the agent program under Pulumi mocks and capture every registration (inputs and options).

The stock MockMonitor hands mocks the inputs only; a thin subclass also records the resource
options the engine would see (ignoreChanges, protect, retainOnDelete), so tests assert what
Pulumi actually receives rather than what our helper function returned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pmocks

from fatctl.domain import AgentSpec


@dataclass
class Registered:
    typ: str
    name: str
    id: str
    inputs: dict[str, Any]
    ignore_changes: list[str] = field(default_factory=list)
    protect: bool = False
    retain_on_delete: bool = False
    state: dict[str, Any] = field(default_factory=dict)


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.ids = itertools.count(1001)
        self.v4 = itertools.count(10)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        rid = str(next(self.ids))
        state = dict(args.inputs)
        if args.typ == "hcloud:index/primaryIp:PrimaryIp":
            if args.inputs.get("type") == "ipv4":
                state["ipAddress"] = f"203.0.113.{next(self.v4)}"
            else:
                state["ipAddress"] = "2001:db8:1::/64"
        if args.typ == "hcloud:index/server:Server":
            state.update(ipv6Address="2001:db8:1::1", status="running")
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class _RecordingMonitor(pmocks.MockMonitor):
    def __init__(self, mocks: _Mocks, sink: list[Registered]) -> None:
        super().__init__(mocks)
        self.sink = sink

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            reg = self.resources[response.urn]
            self.sink.append(
                Registered(
                    typ=request.type,
                    name=request.name,
                    id=response.id,
                    inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                    ignore_changes=list(request.ignoreChanges),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    state=dict(reg.state),
                )
            )
        return response


def run_main(config: dict[str, str]) -> list[Registered]:
    """Run the hand-run entry point (`__main__.py`) under mocks with `config` as stack config."""
    import runpy
    import sys

    sink: list[Registered] = []
    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, preview=False, monitor=_RecordingMonitor(mocks, sink))
    pulumi.runtime.set_all_config(config)

    @pulumi.runtime.test
    def body() -> None:
        sys.modules.pop("stacks.agent.__main__", None)
        runpy.run_module("stacks.agent.__main__", run_name="__main__")

    try:
        body()
    finally:
        pulumi.runtime.set_all_config({})
    return sink


def run_program(spec: AgentSpec, **kwargs: Any) -> tuple[list[Registered], dict[str, Any]]:
    """Run `agent_program` under mocks; return the registrations and the resolved outputs."""
    from stacks.agent.program import agent_program

    sink: list[Registered] = []
    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, preview=False, monitor=_RecordingMonitor(mocks, sink))
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def body() -> pulumi.Output:
        outputs = agent_program(spec, **kwargs)
        keys = sorted(outputs)
        return pulumi.Output.all(*[outputs[k] for k in keys]).apply(
            lambda values: resolved.update(zip(keys, values, strict=True))
        )

    body()
    return sink, resolved


def by_type(regs: list[Registered], short: str) -> list[Registered]:
    """Registrations of one hcloud type, e.g. "server" -> hcloud:index/server:Server."""
    return [r for r in regs if r.typ.split("/")[-1].split(":")[0].lower() == short.lower()]
