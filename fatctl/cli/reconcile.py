"""`fatctl reconcile [--fix]`: database vs Hetzner vs Cloudflare vs boxes.

Parse, call `fatctl.services.reconcile.run`, render: a table of findings for people (each with
the repair `--fix` would make, or what a person should do), one JSON document with `--json`.
Exit 0 when nothing is wrong, 1 when findings remain (after `--fix`: when anything is still
wrong once the repairs are done and the fleet looked at again) or when a cloud could not be
looked at (its token or the domain unset: never called clean), 2 on bad input.

The health command is the box layout's (`fat-health --json`; the box_health and box_sudo
settings, FATCTL_BOX_HEALTH and FATCTL_BOX_SUDO, override it, as for `fatctl upgrade`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import (
    AgentsOpt,
    AllByDefaultOpt,
    JsonOpt,
    LabelOpt,
    NoHealthOpt,
    WaitOpt,
    lease_wait,
)
from fatctl.cli.output import Output
from fatctl.errors import BadInput

if TYPE_CHECKING:
    from fatctl.services.reconcile.run import Report

FINDING_COLUMNS = ("kind", "resource", "agent", "detail", "fix")
FIX_COLUMNS = ("agent", "resource", "action", "result", "detail")


def _rows(report: Report) -> list[dict[str, object]]:
    rows = []
    for finding in report.findings:
        row = finding.row()
        row["fix"] = f"--fix: {finding.action}" if finding.fixable else finding.advice
        rows.append(row)
    return rows


def render(out: Output, report: Report, fixed: bool) -> None:
    if out.json_mode:
        out.data({"clean": report.clean, "findings": [f.row() for f in report.findings],
                  "fixes": report.fixes, "not_checked": report.not_checked})  # fmt: skip
        return
    if report.not_checked:
        out.message(f"not checked: {', '.join(report.not_checked)}")
    if fixed:
        out.table(report.fixes, FIX_COLUMNS, title="repairs")
    if report.clean:
        out.message("reconcile: clean")
        return
    if report.findings:
        out.table(_rows(report), FINDING_COLUMNS, title="findings")
        fixable = sum(f.fixable for f in report.findings)
        people = len(report.findings) - fixable
        tail = f"; {fixable} repairable with --fix" if fixable and not fixed else ""
        out.message(f"reconcile: {len(report.findings)} findings, {people} need a person{tail}")
    if report.unchecked_clouds:  # no finding there is not the same as nothing wrong
        blind = ", ".join(report.unchecked_clouds)
        out.message(f"reconcile: not clean: could not check {blind}")


def reconcile_(
    fix: Annotated[
        bool, typer.Option("--fix", help="Repair what is safe (DNS, labels); list the rest.")
    ] = False,
    all_agents: AllByDefaultOpt = False,
    agents: AgentsOpt = "",
    label: LabelOpt = None,
    no_health: NoHealthOpt = False,
    parallel: Annotated[
        int, typer.Option("--parallel", min=1, max=100, help="Boxes asked at once.")
    ] = 10,
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Compare the database, Hetzner, Cloudflare and the boxes: orphans, drift, missing pieces."""
    from fatctl.cli.layouts import box_layout
    from fatctl.remote.commands.upgrade import health
    from fatctl.services.reconcile.run import Options, reconcile
    from fatctl.validation import agent_name, label_selector

    names = tuple(agent_name(n.strip()) for n in agents.split(",") if n.strip())
    if label is not None:
        label_selector(label)
    if sum((bool(names), all_agents, label is not None)) > 1:
        raise BadInput("choose at most one of --all, --agents a,b or --label k=v")
    c, out = ctx(), Output(json_out)
    opts = Options(names=names, label=label, health=not no_health,
                   health_command=health(box_layout(c.settings)), parallel=parallel)  # fmt: skip
    with lease_wait(wait):  # a repair on an agent another run holds waits up to --wait
        report = reconcile(c.engine, c.settings, opts, fix=fix, actor=c.actor)
    render(out, report, fix)
    if not report.clean:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile_)
