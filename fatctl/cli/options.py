"""Options and arguments more than one command takes, declared once so they read the same
everywhere. Where one flag means different things to different commands (`--all`), each meaning
has its own name here rather than a copy with another help text.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from fatctl.cli.completion import agent_lists, agent_names, labels
from fatctl.cli.output import machine_readable, notice
from fatctl.services.common import leases


def _machine_readable(value: bool) -> bool:
    """`--json`, or `-o json|yaml` anywhere on the line (fatctl.cli.global_flags): either way
    the command takes its machine-readable path, and `Output` renders it as asked."""
    return value or machine_readable()


AgentArg = Annotated[str, typer.Argument(help="Agent name.", autocompletion=agent_names)]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        callback=_machine_readable,
        help="Machine-readable JSON on stdout: -o json (more formats: fatctl --help).",
    ),
]
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (non-interactive use).")
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        min=0,
        max=86400,
        help="If another fatctl run holds this agent, wait up to SECONDS for it to finish "
        "(one 'waiting for' line on stderr), then go on; fail if it is still busy. "
        "Default 0: fail at once, naming the holder.",
    ),
]


@contextmanager
def lease_wait(seconds: float) -> Iterator[None]:
    """Leases the command takes inside this block wait up to `seconds` (`--wait`)."""
    from fatctl.errors import BadInput
    from fatctl.state.leases import LeaseRow, waiting

    if not math.isfinite(seconds):
        raise BadInput(f"--wait must be a number of seconds, not {seconds}")

    def told(row: LeaseRow) -> None:
        notice(f"fatctl: waiting for {row.name}, held by {row.describe()} (up to {seconds:g}s) ...")

    with waiting(seconds, told):
        yield


@contextmanager
def agent_lease(name: str | None, ttl_s: float = leases.PROVISION_TTL_S) -> Iterator[None]:
    """Hold `agent:<name>` (the lease provision, destroy and rebuild share) for the block."""
    if not name:  # a generated name is this run's own: nobody can race for it
        yield
        return
    from fatctl.cli.context import ctx
    from fatctl.state.leases import lease

    with lease(ctx().engine, leases.agent_lease(name), ttl_s=ttl_s, shared=True):
        yield


# The wave policy of every fleet change (`upgrade`, `converge`, `apply`): one spelling, one check.
CanaryOpt = Annotated[int, typer.Option("--canary", min=0, help="Boxes changed alone first.")]
BatchOpt = Annotated[str, typer.Option("--batch", help="Boxes per wave: N or N%.")]
MaxFailuresOpt = Annotated[int, typer.Option("--max-failures", min=0)]
HealthTimeoutOpt = Annotated[float, typer.Option("--health-timeout", min=1.0)]
# Shared by the rollout commands (`upgrade`, `converge`).
SnapshotOpt = Annotated[
    bool, typer.Option("--snapshot", help="Snapshot each box at Hetzner before touching it.")
]

# Fleet selection (`--agents a,b | --all | --label k=v`), as `selected_targets` and the fleet
# services read it. `--all` is a different "every" per command family, so each has a name:
# the boxes SSH can reach (exec, upgrade, converge, creds rotate), the agents with cloud
# resources (preview, apply), and reconcile's, which looks at every agent unless narrowed.
AgentsOpt = Annotated[
    str, typer.Option("--agents", help="Comma-separated agent names.", autocompletion=agent_lists)
]
LabelOpt = Annotated[
    str | None,
    typer.Option(
        "--label", help="k=v on agent columns (state, location, ...).", autocompletion=labels
    ),
]
AllReachableOpt = Annotated[bool, typer.Option("--all", help="Every reachable agent.")]
# Agents named on the command line, or none with `--all`.
AgentsOrAllArg = Annotated[
    list[str] | None, typer.Argument(help="Agents (or --all).", autocompletion=agent_names)
]
AllWithInfraOpt = Annotated[bool, typer.Option("--all", help="Every agent with infra.")]
AllByDefaultOpt = Annotated[bool, typer.Option("--all", help="Every agent (the default).")]
# SSH fan-out width (exec, keys rotate-operator); reconcile keeps its own, capped at 100.
ParallelOpt = Annotated[int, typer.Option("--parallel", min=1, max=200)]
NoHealthOpt = Annotated[bool, typer.Option("--no-health", help="Skip the SSH health check.")]
# Scopes a key or secret command to one agent (absent: the fleet-wide ones).
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change (secrets masked); change nothing.")
]
NoBackupOpt = Annotated[
    bool,
    typer.Option("--no-backup", help="Skip the state backup taken first (recorded in the audit)."),
]

AgentScopeOpt = Annotated[
    str | None, typer.Option("--agent", help="Scope to one agent.", autocompletion=agent_names)
]

EngineOpt = Annotated[
    str | None, typer.Option("--engine", help="pulumi, hcloud or auto (default: settings).")
]
# A new agent's record (`agents create`, `provision`); unset ones come from the settings.
OwnerOpt = Annotated[str, typer.Option("--owner", help="The customer's e-mail address.")]
PlanOpt = Annotated[str, typer.Option("--plan", help="managed or byok.")]
ModelOpt = Annotated[
    str, typer.Option("--model", help="provider/model (BYOK must choose; managed: plan default).")
]
BaseUrlOpt = Annotated[
    str, typer.Option("--base-url", help="For --model custom/<id>: the OpenAI-compatible API.")
]
ServerTypeOpt = Annotated[str | None, typer.Option("--type", help="Hetzner server type.")]
LocationOpt = Annotated[str | None, typer.Option("--location")]
ImageOpt = Annotated[str | None, typer.Option("--image")]


def agent_arg(value: str | None) -> str | None:
    """An agent named on the command line: a malformed name is bad input (exit 2) before any
    lookup, so it never reads as "no such agent" (exit 1)."""
    from fatctl.validation import agent_name

    return None if value is None else agent_name(value)


def selected_targets(agents: str, all_agents: bool, label: str | None) -> list[Any]:
    """The boxes named by `--agents a,b | --all | --label k=v`, as SSH targets."""
    from fatctl.cli.context import ctx
    from fatctl.services.common.targets import select_targets
    from fatctl.validation import agent_name, label_selector

    names = [agent_name(n.strip()) for n in agents.split(",") if n.strip()]
    if label is not None:
        label_selector(label)
    return select_targets(
        ctx().engine, ctx().settings, names=names, all_agents=all_agents, label=label
    )
