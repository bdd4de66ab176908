"""Run the agent program under Pulumi mocks and capture every registration (inputs and options).

The stock MockMonitor hands mocks the inputs only; a thin subclass also records the resource
options the engine would see (ignoreChanges, protect, retainOnDelete), so tests assert what
Pulumi actually receives rather than what our helper function returned.

The program looks fleet SSH keys up with the `getSshKeys` invoke; the mocks answer it from a
`Lookup` (selector -> keys as Hetzner lists them): by default the keys fatctl would have
uploaded for the spec, filtered with the emulator's label-selector parser, or the emulator's
own answer (the parity test).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pmocks

from fatctl.domain import AgentSpec
from fatctl.infra.desired import desired_box
from fatctl.sandbox.hetzner.selectors import matches

Lookup = Callable[[str], list[dict[str, Any]]]
GET_SSH_KEYS = "hcloud:index/getSshKeys:getSshKeys"


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


def fleet_of(*specs: AgentSpec, first_id: int = 501) -> Lookup:
    """A fleet holding each distinct key of `specs` once, as fatctl's key step uploads them."""
    keys: dict[str, dict[str, Any]] = {}
    for spec in specs:
        for key in desired_box(spec).keys:
            keys.setdefault(
                key.fingerprint,
                {"id": first_id + len(keys), "name": key.name, "labels": key.labels},
            )
    return lambda selector: [k for k in keys.values() if matches(selector, k["labels"])]


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, lookup: Lookup) -> None:
        self.ids = itertools.count(1001)
        self.v4 = itertools.count(10)
        self.lookup = lookup
        self.invokes: list[tuple[str, dict[str, Any]]] = []

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

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        self.invokes.append((args.token, dict(args.args)))
        if args.token != GET_SSH_KEYS:
            raise AssertionError(f"the agent program made an unexpected invoke {args.token}")
        selector = str(args.args.get("withSelector") or "")
        keys = [{"fingerprint": "", "publicKey": "", **k} for k in self.lookup(selector)]
        return {"id": selector, "withSelector": selector, "sshKeys": keys}, []


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


def _thread_loop() -> None:
    """Pulumi's mocks run on the thread's event loop. Any `asyncio.run` earlier in this process
    (another test's, in-process) leaves the thread with none, so make one when it is missing."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_main(config: dict[str, str], lookup: Lookup) -> list[Registered]:
    """Run the hand-run entry point (`__main__.py`) under mocks with `config` as stack config."""
    import runpy
    import sys

    sink: list[Registered] = []
    mocks = _Mocks(lookup)
    _thread_loop()
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


def run_program(
    spec: AgentSpec,
    *,
    lookup: Lookup | None = None,
    invokes: list[tuple[str, dict[str, Any]]] | None = None,
    preview: bool = False,
    **kwargs: Any,
) -> tuple[list[Registered], dict[str, Any]]:
    """Run `agent_program` under mocks (fleet keys from `lookup`, by default the spec's own);
    return the registrations and the resolved outputs. `invokes` collects what it looked up."""
    from stacks.agent.program import agent_program

    sink: list[Registered] = []
    mocks = _Mocks(lookup or fleet_of(spec))
    _thread_loop()
    pulumi.runtime.set_mocks(mocks, preview=preview, monitor=_RecordingMonitor(mocks, sink))
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def body() -> pulumi.Output:
        outputs = agent_program(spec, **kwargs)
        keys = sorted(outputs)
        return pulumi.Output.all(*[outputs[k] for k in keys]).apply(
            lambda values: resolved.update(zip(keys, values, strict=True))
        )

    body()
    if invokes is not None:
        invokes.extend(mocks.invokes)
    return sink, resolved


def by_type(regs: list[Registered], short: str) -> list[Registered]:
    """Registrations of one hcloud type, e.g. "server" -> hcloud:index/server:Server."""
    return [r for r in regs if r.typ.split("/")[-1].split(":")[0].lower() == short.lower()]
