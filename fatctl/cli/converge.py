"""`fatctl converge`: re-rendered configuration applied to live boxes as a rollout.

Parse, call `fatctl.services.converge.job`, render. `--dry-run` prints, per box, the files that
would be added or changed with a unified diff (secrets are never read, diffs are redacted) and
exits 0 having written and recorded nothing. Otherwise the change is a rollout of kind
`converge`: same policy, events, progress view, final table and `rollout show|resume|abort`
as `fatctl upgrade` (the box layout comes from the same `box_*` settings, FATCTL_BOX_*).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import (
    AgentsOpt,
    AllReachableOpt,
    BatchOpt,
    CanaryOpt,
    HealthTimeoutOpt,
    JsonOpt,
    LabelOpt,
    MaxFailuresOpt,
    SnapshotOpt,
    selected_targets,
)
from fatctl.cli.output import Output
from fatctl.cli.upgrade import drive, parse_policy, run_for

if TYPE_CHECKING:
    from fatctl.services.converge.job import BoxPreview


def converge_(
    all_agents: AllReachableOpt = False,
    agents: AgentsOpt = "",
    label: LabelOpt = None,
    canary: CanaryOpt = 1,
    batch: BatchOpt = "5",
    max_failures: MaxFailuresOpt = 0,
    health_timeout: HealthTimeoutOpt = 120.0,
    keep: Annotated[int, typer.Option("--keep-backups", min=1, help="Backups kept per box.")] = 3,
    snapshot: SnapshotOpt = False,
    templates: Annotated[
        str | None,
        typer.Option("--templates", help="Render from this template tree (staging a change)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show per-box diffs only.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Re-render boxes' configuration and roll it out over SSH (per-box diff with --dry-run)."""
    from fatctl.services.converge import job as converge

    policy = parse_policy(canary, batch, max_failures, health_timeout, keep, snapshot)
    _check_templates(templates)
    targets = selected_targets(agents, all_agents, label)
    sandbox = ctx().settings.in_sandbox  # its boxes are rendered as provisioning rendered them
    out = Output(json_out)
    if not targets:
        out.message("no agents selected")
        return
    targets.sort(key=lambda t: t.name)
    if dry_run:
        run, _ = run_for(out)
        _show_preview(out, converge.preview(run, targets, templates, sandbox))
        return
    drive(out, lambda run: converge.start(run, targets, policy, templates, sandbox))


def _check_templates(templates: str | None) -> None:
    from pathlib import Path

    from fatctl.errors import BadInput

    if templates is not None and not (Path(templates) / "etc").is_dir():
        raise BadInput(f"--templates {templates}: not a template tree (no etc/ directory)")


def _show_preview(out: Output, boxes: list[BoxPreview]) -> None:
    """JSON: one object per box with its diffs; people: a diff per box, then a summary table."""
    if out.json_mode:
        payload = [{**b.row(), "diff": "".join(c.diff for c in b.changes)} for b in boxes]
        out.data(payload)
        if any(b.error for b in boxes):
            raise typer.Exit(1)
        return
    for box in boxes:
        if box.changes:
            sys.stdout.write(f"=== {box.agent}: {len(box.changes)} file(s) would change\n")
            sys.stdout.write("".join(c.diff for c in box.changes))
    rows = [
        {
            "agent": b.agent,
            "added": len(b.row()["added"]),
            "changed": len(b.row()["changed"]) + len(b.row()["mode"]),
            "error": b.error,
        }
        for b in boxes
    ]
    out.table(rows, ("agent", "added", "changed", "error"), title="converge (dry run)")
    if any(b.error for b in boxes):
        raise typer.Exit(1)  # a box that could not be read has no diff to trust


def register(app: typer.Typer) -> None:
    app.command("converge")(converge_)
