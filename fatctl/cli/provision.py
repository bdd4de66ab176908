"""`fatctl provision`, `fatctl status`, `fatctl destroy`: thin commands over the services in
`fatctl.services.provision.flow|status|destroy`. Parse, call, render; nothing else.

Progress: one line per step with its elapsed time for people, a JSON event per line with --json.
The `sandbox` setting (`FATCTL_SANDBOX=1`, set by the sandbox's env file) marks boxes as the
sandbox's: golden image, Caddy's internal CA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.completion import agent_names
from fatctl.cli.context import confirm, ctx
from fatctl.cli.options import (
    AgentArg,
    DryRunOpt,
    EngineOpt,
    ImageOpt,
    JsonOpt,
    LocationOpt,
    NoBackupOpt,
    NoHealthOpt,
    OwnerOpt,
    PlanOpt,
    ServerTypeOpt,
    WaitOpt,
    YesOpt,
    agent_arg,
    agent_lease,
    lease_wait,
)
from fatctl.cli.output import Output

if TYPE_CHECKING:
    from fatctl.services.provision.dry_run import PlannedRun


def _progress(out: Output) -> Callable[..., None]:
    def emit(kind: str, **fields: object) -> None:
        if out.json_mode:
            out.event(kind, **fields)
            return
        step, agent = fields.get("step", ""), fields.get("agent", "")
        if kind == "step.start":
            out.message(f"{agent}: {step} ...")
        elif kind == "step.done":
            out.message(f"{agent}: {step} done in {fields.get('elapsed_s')}s")
        elif kind == "step.failed":
            out.message(f"{agent}: {step} FAILED after {fields.get('elapsed_s')}s")
        else:
            out.message(f"{agent}: {step} {kind.removeprefix('step.')} ({fields.get('note', '')})")

    return emit


def show_planned(out: Output, planned: PlannedRun, title: str) -> None:
    """A dry run's verdict: the record, then every resource change (one JSON object)."""
    if out.json_mode:
        out.data({**planned.row(), "steps": dict(planned.steps),
                  "resources": planned.change_rows()})  # fmt: skip
        return
    out.record(planned.row(), title=title)
    out.table(planned.change_rows(), ("kind", "name", "action", "detail"), title="resources")


def provision(
    agent: Annotated[
        str,
        typer.Argument(
            help="Agent name (a new one, or one to continue).", autocompletion=agent_names
        ),
    ],
    owner: OwnerOpt,
    plan: PlanOpt = "managed",
    server_type: ServerTypeOpt = None,
    location: LocationOpt = None,
    image: ImageOpt = None,
    engine: EngineOpt = None,
    no_box: Annotated[
        bool, typer.Option("--no-box", help="Stop after infra+DNS (API-only sandbox).")
    ] = False,
    wait: WaitOpt = 0.0,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Create the agent's box and drive it to ready; a rerun continues where a run stopped."""
    from fatctl.infra import make_engine
    from fatctl.services.agents.records import NewAgent
    from fatctl.services.common.steps import BOX_STEPS, PROVISION_STEPS
    from fatctl.services.provision.flow import Options
    from fatctl.services.provision.flow import provision as run

    c, out = ctx(), Output(json_out)
    s = c.settings
    request = NewAgent(agent, owner, plan, server_type or s.server_type, location or s.location,
                       image or s.image, s.runtime_version).validated()  # fmt: skip
    opts = Options(skip=BOX_STEPS if no_box else frozenset(), sandbox=s.in_sandbox,
                   emit=_progress(out))  # fmt: skip
    if dry_run:
        from fatctl.services.provision.dry_run import preview_provision

        planned = preview_provision(c.engine, c.keyring, s, make_engine(s, engine), request,
                                    opts)  # fmt: skip
        show_planned(out, planned, f"provision {planned.agent} (dry run: nothing changed)")
        return
    from fatctl.cli.progress_view import StepProgress  # rich: only once a run starts

    view = StepProgress(opts.emit, len(PROVISION_STEPS), json_mode=json_out)
    opts.emit = view
    try:
        with lease_wait(wait):  # checks --wait before the settings are
            infra = make_engine(s, engine)
            # Held from before the agent's row exists: two runs of a new name must not both
            # create it.
            with agent_lease(request.name):
                result = run(c.engine, c.keyring, s, infra, request, c.actor, opts)
    finally:
        view.close()
    record = {"agent": result.agent, "state": result.state, "fqdn": result.fqdn,
              "server_id": result.server_id, "ipv4": result.ipv4, "ipv6": result.ipv6,
              "elapsed_s": result.elapsed_s}  # fmt: skip
    if json_out:
        out.event("provision.result", **record)
    else:
        out.record(record, title=f"agent {result.agent}")


def status(
    agent: Annotated[
        str | None, typer.Argument(help="One agent (default: all).", autocompletion=agent_names)
    ] = None,
    no_health: NoHealthOpt = False,
    ssh_all: Annotated[
        bool,
        typer.Option(
            "--ssh",
            help="Ask every box for fat-health over SSH (default: only those failing /readyz).",
        ),
    ] = False,
    api: Annotated[
        bool, typer.Option("--api", help="Show the Hetzner API rate budget instead.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Agents as the database, the cloud and the boxes see them.

    Every box is probed at once over HTTPS (https://<agent>.<domain>/readyz); only the boxes
    failing it are asked for fat-health over SSH, every box with --ssh. `recent` is what
    `fatctl serve`'s sweeps stored."""
    if api:
        from fatctl.cli.infra_cmd import api_cmd

        api_cmd(json_out)  # same view as `fatctl box api`
        return
    from fatctl.infra import make_engine
    from fatctl.services.fleet.status import status as run
    from fatctl.services.fleet.status import trust_warning

    agent = agent_arg(agent)
    c = ctx()
    infra = make_engine(c.settings) if c.settings.hcloud_token else None
    rows = run(c.engine, c.settings, infra, [agent] if agent else [], health=not no_health,
               ssh_all=ssh_all)  # fmt: skip
    cols = ("agent", "state", "last_step", "ipv4", "cloud", "health", "channels", "recent",
            "error")  # fmt: skip
    Output(json_out).table(rows, cols, title="agents")
    # Every agent is shown first; then a box that did not prove its pinned host key fails the
    # command (an attack, or a box rebuilt outside fatctl), as `fatctl ssh` to it would.
    if line := trust_warning(rows):
        from fatctl.cli.output import error_line

        error_line(line)
        raise typer.Exit(1)


def destroy(
    agent: AgentArg,
    release_ips: Annotated[
        bool, typer.Option("--release-ips", help="Delete the primary IPs too.")
    ] = False,
    purge_data: Annotated[
        bool, typer.Option("--purge-data", help="Delete the agent's R2 data.")
    ] = False,
    no_backup: NoBackupOpt = False,
    engine: EngineOpt = None,
    yes: YesOpt = False,
    wait: WaitOpt = 0.0,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove the agent's DNS records, server and stack (IPs and R2 data kept unless asked).

    The box's state is backed up first (kind pre-destroy) unless --no-backup; a box that cannot
    be reached refuses the destroy before anything changes. A destroy that failed (the agent
    stays `destroying`) is finished by running it again."""
    from fatctl.infra import make_engine
    from fatctl.services.provision.destroy import DESTROY_STEPS
    from fatctl.services.provision.destroy import destroy as run

    agent = agent_arg(agent) or ""
    c, out = ctx(), Output(json_out)
    s = c.settings
    if dry_run:
        from fatctl.services.provision.dry_run import DestroyRequest, preview_destroy

        asked = DestroyRequest(agent, release_ips=release_ips, purge_data=purge_data)
        planned = preview_destroy(c.engine, c.keyring, s, make_engine(s, engine), asked)
        show_planned(out, planned, f"destroy {agent} (dry run: nothing changed)")
        return
    what = " and its R2 data" if purge_data else ""
    confirm(f"Destroy agent {agent}{what}?", yes)
    from fatctl.cli.progress_view import StepProgress

    view = StepProgress(_progress(out), len(DESTROY_STEPS), json_mode=json_out)
    try:
        with lease_wait(wait):
            result = run(c.engine, c.keyring, s, make_engine(s, engine), agent, c.actor,
                         release_ips=release_ips, purge_data=purge_data, backup=not no_backup,
                         emit=view)  # fmt: skip
    finally:
        view.close()
    if json_out:
        out.event("destroy.result", agent=result.agent, state=result.state)
    else:
        out.message(f"agent {result.agent}: {result.state}")


def register(app: typer.Typer) -> None:
    app.command("provision")(provision)
    app.command("status")(status)
    app.command("destroy")(destroy)
