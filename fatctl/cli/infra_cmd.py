"""`fatctl box ...`, `fatctl rebuild` and `fatctl creds rotate`: thin commands over the infra
engines (fatctl.infra) and the R2 rotation service. Parse, call, render; nothing else.

Power and snapshot verbs find the box by its Hetzner labels and need no database; `plan`
and `creds rotate` build the agent's spec from the state database; `rebuild` is the lifecycle
op of `services.lifecycle.rebuild` (backup, reinstall, restore, health gate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fatctl.cli.context import chosen_targets, confirm, ctx
from fatctl.cli.options import (
    AgentArg,
    AgentsOrAllArg,
    AllReachableOpt,
    DryRunOpt,
    EngineOpt,
    JsonOpt,
    NoBackupOpt,
    WaitOpt,
    YesOpt,
    lease_wait,
)
from fatctl.cli.output import Output, exit_if_failed
from fatctl.clock import wall_clock
from fatctl.domain import snapshot_labels

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fatctl.domain import BoxInfo, Plan
    from fatctl.infra.engine import InfraEngine

box_app = typer.Typer(
    help="An agent's box at Hetzner: plan, status, power, rescue, snapshot, resize.",
    no_args_is_help=True,
)
creds_app = typer.Typer(help="Credentials on the boxes (R2 storage).", no_args_is_help=True)

PLAN_COLUMNS = ("kind", "name", "action", "detail")


def _engine(name: str | None = None) -> InfraEngine:
    from fatctl.infra import make_engine

    out = Output(False)
    return make_engine(
        ctx().settings,
        name,
        on_change=lambda c: out.message(f"{c.action:7} {c.kind} {c.name} {c.detail}".rstrip()),
    )


def _agent(name: str) -> str:
    from fatctl.errors import BadInput
    from fatctl.validation import agent_name

    try:
        return agent_name(name)
    except BadInput:
        shown = repr(name if len(name) <= 40 else name[:40] + "...")
        raise BadInput(
            f"{shown} is not an agent name: 3-40 of a-z, 0-9 and '-', starting with a letter"
        ) from None


def _box_record(info: BoxInfo) -> dict[str, object]:
    return {
        "agent": info.agent,
        "server_id": info.server_id,
        "status": info.status,
        "type": info.server_type,
        "location": info.location,
        "image": info.image,
        "ipv4": info.ipv4,
        "ipv6": info.ipv6,
    }


def plan_rows(plan: Plan) -> list[dict[str, str]]:
    return [
        {"kind": c.kind, "name": c.name, "action": c.action, "detail": c.detail}
        for c in plan.changes
    ]


@box_app.command("plan")
def plan_cmd(agent: AgentArg, engine: EngineOpt = None, json_out: JsonOpt = False) -> None:
    """What an apply would change for the agent's box (nothing is changed)."""
    from fatctl.infra.pulumi.preview import summary
    from fatctl.services.common.specs import spec_for_agent

    name = _agent(agent)
    chosen = _engine(engine)  # an unknown or missing engine fails before the database is read
    plan = chosen.plan(spec_for_agent(name, engine=ctx().engine, settings=ctx().settings))
    payload = {**summary(plan), "changes": plan_rows(plan)}
    Output(json_out).table(
        plan_rows(plan), PLAN_COLUMNS, title=f"plan for {agent}", json_payload=payload
    )


@box_app.command("status")
def status_cmd(agent: AgentArg, json_out: JsonOpt = False) -> None:
    """The box as Hetzner reports it now."""
    from fatctl.errors import NotFound

    name = _agent(agent)
    info = _engine("hcloud").status(name)
    if info is None:
        raise NotFound(f"agent {agent} has no server at Hetzner")
    Output(json_out).record(_box_record(info), title=f"box {agent}")


def _power(agent: str, verb: str, json_out: bool) -> None:
    name = _agent(agent)  # bad input fails before settings or the API are touched
    getattr(_engine("hcloud"), verb)(name)
    Output(json_out).event(verb, agent=agent)


@box_app.command("on")
def on_cmd(agent: AgentArg, json_out: JsonOpt = False) -> None:
    """Power the box on."""
    _power(agent, "power_on", json_out)


@box_app.command("off")
def off_cmd(agent: AgentArg, yes: YesOpt = False, json_out: JsonOpt = False) -> None:
    """Power the box off (hard): the agent goes offline."""
    confirm(f"power off {agent}, taking the agent offline?", yes)
    _power(agent, "power_off", json_out)


@box_app.command("reboot")
def reboot_cmd(agent: AgentArg, yes: YesOpt = False, json_out: JsonOpt = False) -> None:
    """Reboot the box (hard reset)."""
    confirm(f"reboot {agent}?", yes)
    _power(agent, "reboot", json_out)


@box_app.command("rescue")
def rescue_cmd(agent: AgentArg, yes: YesOpt = False, json_out: JsonOpt = False) -> None:
    """Enable the rescue system (with the agent's SSH keys) for the next boot."""
    confirm(f"enable rescue mode for {agent}?", yes)
    _power(agent, "enable_rescue", json_out)


@box_app.command("snapshot")
def snapshot_cmd(
    agent: AgentArg,
    description: Annotated[str, typer.Option("--description", help="Snapshot description.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Snapshot the box's disk (before risky changes); prints the image id."""
    labels = snapshot_labels(_agent(agent), "manual")
    image = _engine("hcloud").snapshot(agent, description or f"fatctl snapshot of {agent}", labels)
    Output(json_out).record({"agent": agent, "image": image}, title="snapshot taken")


@box_app.command("resize")
def resize_cmd(
    agent: AgentArg,
    server_type: Annotated[str, typer.Argument(help="New Hetzner server type, e.g. cx33.")],
    no_backup: NoBackupOpt = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Change the server type (the box is powered off and on; the disk is kept).

    The box's state is backed up first (kind pre-resize) unless --no-backup: the disk is kept
    (upgrade_disk=False, so a downsize stays possible), but a box that does not come back from
    its power cycle is rebuilt from that backup."""
    name = _agent(agent)
    confirm(f"resize {name} to {server_type} (the agent restarts)?", yes)
    backup = _backup_first(name, "resize", skip=no_backup)
    info = _engine("hcloud").change_type(name, server_type)
    Output(json_out).record({**_box_record(info), "backup": backup}, title=f"resized {agent}")


def _holds_state(name: str) -> bool:
    """The agent's box has state to lose (as destroy judges it); an agent fatctl does not
    record (the box verbs work on labels alone) has none of fatctl's to back up."""
    from fatctl.services.serving.push import has_box
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(ctx().engine) as session:
        return repo.agent_exists(session, name) and has_box(repo.get_agent(session, name))


def _backup_first(name: str, change: str, *, skip: bool) -> str:
    """A risky change's backup (kind pre-<change>), taken live as the daily timer takes it
    (OpenClaw's backup snapshots each database safely; the change stops the box next); with
    `skip`, the skip on the record. A backup that fails stops the change before it starts."""
    from fatctl.errors import FatctlError
    from fatctl.remote.runner import Pool
    from fatctl.services.backup.on_box import take_backup
    from fatctl.services.common.audit import audit_change
    from fatctl.services.common.targets import agent_target

    c = ctx()
    if skip:
        audit_change(c.engine, c.actor, f"{change}.backup", name, "skipped",
                     {"note": "skipped by --no-backup"})  # fmt: skip
        return "skipped: --no-backup"
    if not _holds_state(name):
        return "skipped: no box holding state"
    try:
        target = agent_target(c.engine, c.settings, name)
        with Pool() as pool:
            taken = take_backup(c.engine, pool, target, kind=f"pre-{change}", actor=c.actor)
    except FatctlError as exc:
        raise FatctlError(f"backup before {change} failed: {exc.one_line()}",
                          hint=f"pass --no-backup to {change} without one") from None  # fmt: skip
    return taken.object_key


@box_app.command("api")
def api_cmd(json_out: JsonOpt = False) -> None:
    """The API rate budgets seen by this process (one cheap Hetzner call per project)."""
    from fatctl.infra.projects import split_by_project
    from fatctl.pacing.retry import budget_view

    for project_engine, _ in split_by_project(_engine("hcloud"), []):
        project_engine.status("fatctl-budget-probe")  # each project meters its own budget
    rows = budget_view()
    Output(json_out).table(
        rows, ("api", "limit", "remaining", "reset_in_s", "requests_seen"), title="API budget"
    )


def rebuild(
    agent: AgentArg,
    image: Annotated[str | None, typer.Option("--image", help="Image name or snapshot id.")] = None,
    snapshot: Annotated[
        bool, typer.Option("--snapshot/--no-snapshot", help="Snapshot first.")
    ] = True,
    no_backup: NoBackupOpt = False,
    no_restore: Annotated[
        bool,
        typer.Option("--no-restore", help="Start on an empty state (no backup put back)."),
    ] = False,
    yes: YesOpt = False,
    wait: WaitOpt = 0.0,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Reinstall the box on a fresh disk, keeping server, IPs and the customer's state.

    The state is backed up first (the gateway stopped), restored before the gateway starts
    again, and the box must pass the health gate. A rerun finishes an unfinished rebuild."""
    from fatctl.services.lifecycle.rebuild import preview
    from fatctl.services.lifecycle.rebuild import rebuild as run
    from fatctl.services.lifecycle.suspend import Context

    name, out = _agent(agent), Output(json_out)
    asked: dict[str, Any] = {"image": image, "snapshot": snapshot, "no_backup": no_backup,
                             "no_restore": no_restore}  # fmt: skip
    with lease_wait(wait):  # a bad --wait is refused here, before anything is asked
        c = ctx()
        lc = Context(c.engine, c.keyring, c.settings, _engine("hcloud"), c.actor,
                     emit=_rebuild_progress(out))  # fmt: skip
        if dry_run:
            planned = preview(lc, name, **asked)
            out.record(planned, title=f"rebuild {name} (dry run: nothing changed)")
            return
        confirm(f"rebuild {name} from {image or 'its image'}, wiping its disk?", yes)
        done = run(lc, name, **asked)
    out.record(done.as_dict(), title=f"rebuilt {name}")


def _rebuild_progress(out: Output) -> Any:
    """Steps as lines for people; with --json, the snapshot and backup taken as events (the
    record that ends the output has the rest)."""

    def emit(kind: str, **fields: object) -> None:
        step, agent = fields.get("step", ""), fields.get("agent", "")
        if out.json_mode:
            if kind == "step.done" and step == "snapshot":
                out.event("snapshot", agent=agent, image=fields.get("snapshot_id"))
            elif kind == "step.done" and step == "backup":
                out.event("backup", agent=agent, name=fields.get("backup"))
        elif kind in ("step.start", "step.done", "step.failed"):
            out.message(f"{agent}: {step} {kind.removeprefix('step.')}".rstrip())
        else:
            out.message(f"{agent}: {step} {kind.removeprefix('step.')} ({fields.get('note')})")

    return emit


@creds_app.command("rotate")
def rotate_cmd(
    agents: AgentsOrAllArg = None,
    all_agents: AllReachableOpt = False,
    within_days: Annotated[
        float, typer.Option("--within-days", help="Rotate when expiring within.")
    ] = 2.0,
    force: Annotated[bool, typer.Option("--force", help="Rotate even fresh credentials.")] = False,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Refresh the R2 credentials on boxes before they expire (over SSH)."""
    from datetime import timedelta

    from fatctl.remote.runner import Pool
    from fatctl.services.storage.r2_rotation import rotate_r2

    c, targets = ctx(), chosen_targets(agents, all_agents)
    if dry_run:
        from fatctl.services.storage.r2_rotation import planned_rotations

        done = planned_rotations(c.engine, targets, now=wall_clock(), force=force,
                                 window=timedelta(days=within_days))  # fmt: skip
        _rotation_table(done, json_out, "R2 credentials (dry run: nothing changed)")
        return
    with Pool() as pool:
        done = rotate_r2(
            c.engine,
            c.keyring,
            c.settings,
            targets,
            pool,
            window=timedelta(days=within_days),
            force=force,
            actor=c.actor,
        )
    _rotation_table(done, json_out, "R2 credentials")
    exit_if_failed([r.agent for r in done if r.action == "failed"], len(done))


def _rotation_table(done: Sequence[Any], json_out: bool, title: str) -> None:
    rows = [
        {"agent": r.agent, "action": r.action, "expires_at": r.expires_at, "detail": r.detail}
        for r in done
    ]
    Output(json_out).table(rows, ("agent", "action", "expires_at", "detail"), title=title)


def register(app: typer.Typer) -> None:
    """Add these commands to the main app (called from fatctl.cli.main)."""
    app.add_typer(box_app, name="box")
    app.add_typer(creds_app, name="creds")
    app.command("rebuild")(rebuild)
