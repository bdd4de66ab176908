"""`fatctl upgrade --to V` and `fatctl rollout show|resume|abort ID`: rolling runtime upgrades.

Parse, call `fatctl.services.rollout.engine`, render: progress as events (timestamped JSON with
`--json`), then one table of every host's step. Exit 1 when the rollout halted.

The box layout defaults to the one cloud-init builds; the `box_*` settings (FATCTL_BOX_ROOT,
FATCTL_BOX_INSTALL, ..., see fatctl.config.BOX_LAYOUT and fatctl.cli.layouts) override it (the
integration tests point it at a runtime in each test host's home directory), for the runtime
and, for `fatctl converge`, for where files live.
With a terminal on stderr (and no --json), an overall bar and the current batch are drawn there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.completion import rollout_ids
from fatctl.cli.context import ctx
from fatctl.cli.layouts import box_layout, files_layout
from fatctl.cli.options import (
    AgentsOpt,
    AllReachableOpt,
    BatchOpt,
    CanaryOpt,
    HealthTimeoutOpt,
    JsonOpt,
    LabelOpt,
    MaxFailuresOpt,
    NoBackupOpt,
    SnapshotOpt,
    selected_targets,
)
from fatctl.cli.output import Output
from fatctl.errors import BadInput

if TYPE_CHECKING:
    from fatctl.cli.progress_view import RolloutProgress
    from fatctl.domain import RolloutPolicy
    from fatctl.services.rollout.engine import Report, Run

COLUMNS = ("agent", "wave", "phase", "from", "to", "snapshot", "error")
RolloutIdArg = Annotated[int, typer.Argument(autocompletion=rollout_ids)]
rollout_app = typer.Typer(help="Inspect, resume or abort a recorded rollout.", no_args_is_help=True)


def parse_policy(
    canary: int,
    batch: str,
    max_failures: int,
    health_timeout: float,
    keep: int,
    snapshot: bool = False,
) -> RolloutPolicy:
    from fatctl.domain import RolloutPolicy

    text = batch.strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 < percent <= 100:
                raise ValueError
            return RolloutPolicy(canary, 1, percent, max_failures, health_timeout, snapshot, keep)
        size = int(text)
        if size < 1:
            raise ValueError
    except ValueError:
        raise BadInput(
            f"--batch wants a host count or a percentage like 10%, not {batch!r}"
        ) from None
    return RolloutPolicy(canary, size, None, max_failures, health_timeout, snapshot, keep)


def run_for(out: Output) -> tuple[Run, RolloutProgress]:
    """The engine's Run, its events going through the progress view (call `close` after)."""
    from fatctl.cli.progress_view import RolloutProgress  # rich: only once a rollout runs
    from fatctl.services.converge.job import CONVERGE
    from fatctl.services.rollout.engine import Run
    from fatctl.services.rollout.upgrade import UPGRADE

    view = RolloutProgress(out.event, json_mode=out.json_mode)
    c = ctx()
    run = Run(c.engine, c.settings, box_layout(c.settings), c.actor, view)
    # Every kind a recorded rollout may have: `rollout resume` of a converge needs it too.
    run.kinds = {kind.name: kind for kind in (UPGRADE, CONVERGE)}
    run.files = files_layout(c.settings)
    return run, view


def drive(out: Output, go: Callable[[Run], Report]) -> None:
    """Run a rollout with the progress view, then render its table (exit 1 when halted)."""
    run, view = run_for(out)
    try:
        report = go(run)
    finally:
        view.close()
    render_report(out, report)


def render_report(out: Output, report: Report) -> None:
    title = f"rollout {report.rollout_id}: {report.state}"
    payload = {"rollout": report.rollout_id, "state": report.state, "reason": report.reason}
    out.table(report.rows, COLUMNS, title=title, json_payload={**payload, "steps": report.rows})
    if report.halted:
        raise typer.Exit(1)


def upgrade(
    to: Annotated[str, typer.Option("--to", help="The OpenClaw version to roll out.")],
    all_agents: AllReachableOpt = False,
    agents: AgentsOpt = "",
    label: LabelOpt = None,
    canary: CanaryOpt = 1,
    batch: BatchOpt = "5",
    max_failures: MaxFailuresOpt = 0,
    health_timeout: HealthTimeoutOpt = 120.0,
    keep: Annotated[int, typer.Option("--keep-versions", min=1)] = 3,
    snapshot: SnapshotOpt = False,
    no_backup: NoBackupOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the waves only.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Roll a runtime version across the fleet: canaries, batches, health gates, rollback.

    Each box backs its state up before it changes (unless --no-backup); a rollback whose old
    version will not serve on the upgraded state puts that backup back."""
    from dataclasses import replace

    from fatctl.remote.commands.upgrade import check_version
    from fatctl.services.rollout import engine as rollout
    from fatctl.services.rollout.plan import plan_waves

    try:
        check_version(to)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    policy = parse_policy(canary, batch, max_failures, health_timeout, keep, snapshot)
    policy = replace(policy, backup=not no_backup)
    targets = selected_targets(agents, all_agents, label)
    out = Output(json_out)
    if not targets:
        out.message("no agents selected")
        return
    targets.sort(key=lambda t: t.name)
    if dry_run:
        waves = plan_waves([t.name for t in targets], policy)
        rows = [{"wave": w.index, "hosts": ", ".join(w.hosts)} for w in waves]
        out.table(rows, ("wave", "hosts"), title=f"upgrade to {to} (dry run)")
        return
    drive(out, lambda run: rollout.start(run, targets, to, policy))


@rollout_app.command("show")
def show(rollout_id: RolloutIdArg, json_out: JsonOpt = False) -> None:
    """Every host step of a rollout, and where it stands."""
    from fatctl.services.rollout import records as rec

    rollout, steps = rec.load(ctx().engine, rollout_id)
    out = Output(json_out)
    if not json_out:
        summary = {"kind": rollout.kind, "target": rollout.target, "state": rollout.state}
        out.record({**summary, "reason": rollout.reason, "actor": rollout.actor})
    rows = rec.step_rows(steps)
    payload = {
        "rollout": rollout.id,
        "state": rollout.state,
        "target": rollout.target,
        "steps": rows,
    }
    out.table(rows, COLUMNS, title=f"rollout {rollout.id}", json_payload=payload)


@rollout_app.command("resume")
def resume_cmd(rollout_id: RolloutIdArg, json_out: JsonOpt = False) -> None:
    """Continue an interrupted rollout: finished hosts are skipped, half-done ones re-verified."""
    from fatctl.services.rollout import engine as rollout

    drive(Output(json_out), lambda run: rollout.resume(run, rollout_id))


@rollout_app.command("abort")
def abort_cmd(rollout_id: RolloutIdArg, json_out: JsonOpt = False) -> None:
    """Stop a rollout and put every changed host back (previous version or files)."""
    from fatctl.services.rollout import engine as rollout

    drive(Output(json_out), lambda run: rollout.abort(run, rollout_id))


def register(app: typer.Typer) -> None:
    app.command("upgrade")(upgrade)
    app.add_typer(rollout_app, name="rollout")
