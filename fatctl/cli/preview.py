"""`fatctl preview` and `fatctl apply`: fleet infra previews and batched infra changes.

Parse, call `fatctl.services.fleet` (preview, apply), render. Exit codes are part of the
contract (docs/exit-codes.md): preview exits 0 when nothing would change, 3 when changes are
pending, 1 when an agent could not be previewed, 2 on bad input; apply exits 0 when done, 1 when
an agent failed or the run halted, 2 on bad input or a refused replacement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fatctl.cli.context import confirm, ctx
from fatctl.cli.options import (
    AgentsOpt,
    AllWithInfraOpt,
    BatchOpt,
    CanaryOpt,
    EngineOpt,
    HealthTimeoutOpt,
    JsonOpt,
    LabelOpt,
    MaxFailuresOpt,
    YesOpt,
)
from fatctl.cli.output import Output
from fatctl.errors import BadInput, FatctlError

if TYPE_CHECKING:
    from fatctl.domain import AgentSpec
    from fatctl.services.fleet.apply import Report
    from fatctl.services.fleet.preview import AgentPreview, FleetPreview

PREVIEW_COLUMNS = ("agent", "creates", "updates", "replaces", "deletes", "note")
LIVE_MARK = "REPLACES LIVE BOX"


class PreviewFailed(FatctlError):
    exit_code = 1


def _names(agents: str) -> list[str]:
    return [n.strip() for n in agents.split(",") if n.strip()]


def _fleet(
    agents: str, all_agents: bool, label: str | None, engine: str | None
) -> tuple[FleetPreview, list[AgentSpec]]:
    from fatctl.infra import make_engine
    from fatctl.services.fleet.preview import preview, select_specs

    c = ctx()
    chosen = make_engine(c.settings, engine)  # a bad engine name fails before the database
    specs, failed = select_specs(
        c.engine, c.settings, names=_names(agents), all_agents=all_agents, label=label
    )
    return preview(chosen, specs, failed, whole_fleet=not agents), specs


def _note(agent: AgentPreview) -> str:
    if agent.error:
        return f"error: {agent.error}"
    changed = [c for c in (agent.plan.changes if agent.plan else ()) if c.action != "same"]
    text = "; ".join(
        f"{c.kind} {c.action}" + (f" ({c.detail})" if c.detail else "") for c in changed
    )
    text = text if len(text) <= 100 else text[:97] + "..."
    return f"{LIVE_MARK}: {text}" if agent.replaces_live else text


def render_preview(out: Output, fleet: FleetPreview, title: str = "infra preview") -> None:
    rows: list[dict[str, Any]] = [
        {**a.counts(), "agent": a.agent, "note": _note(a)} for a in fleet.agents
    ]
    out.table(
        rows,
        PREVIEW_COLUMNS,
        title=f"{title} ({fleet.engine} engine)",
        json_payload=fleet.payload(),
        highlight=lambda row: str(row.get("note", "")).startswith((LIVE_MARK, "error:")),
    )
    totals = fleet.totals()
    out.message(
        f"{totals['agents']} agents, {totals['with_changes']} with changes, "
        f"{totals['replacing_live_boxes']} replacing a live box, {totals['errors']} failed "
        f"(exit {fleet.exit_code})"
    )


def _finish_preview(fleet: FleetPreview) -> None:
    if fleet.errors:
        names = ", ".join(a.agent for a in fleet.errors)
        raise PreviewFailed(f"could not preview {names}: {fleet.errors[0].error}")
    if fleet.exit_code:
        raise typer.Exit(fleet.exit_code)


def preview_(
    agents: AgentsOpt = "",
    all_agents: AllWithInfraOpt = False,
    label: LabelOpt = None,
    engine: EngineOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show per agent what applying infra would change (exit 0: nothing, 3: changes pending).

    Nothing named means every agent with infra (like --all). Exit codes, for CI: 0 nothing would
    change; 3 changes are pending; 1 an agent could not be previewed (the others are still
    shown); 2 bad input. A replacement of a live box is marked and `fatctl apply` refuses it
    unless named with --allow-replace.
    """
    fleet, _ = _fleet(agents, all_agents, label, engine)
    render_preview(Output(json_out), fleet)
    _finish_preview(fleet)


def _allowed(values: list[str] | None) -> set[str]:
    return {n for value in values or [] for n in _names(value)}


def _render_apply(out: Output, report: Report, fleet: FleetPreview) -> None:
    from fatctl.services.fleet.apply import COLUMNS

    payload = {
        "state": report.state,
        "reason": report.reason,
        "engine": fleet.engine,
        "agents": report.rows(),
    }
    out.table(
        report.rows(),
        COLUMNS,
        title=f"apply: {report.state}",
        json_payload=payload,
        highlight=lambda row: row.get("phase") in ("failed", "unreachable"),
    )
    failed = [o.agent for o in report.outcomes if o.phase in ("failed", "unreachable")]
    if report.halted or failed:
        raise PreviewFailed(
            f"apply {report.state}: {', '.join(failed) or 'no agent'} failed"
            + (f" ({report.reason})" if report.reason else "")
        )


def apply_(
    agents: AgentsOpt = "",
    all_agents: AllWithInfraOpt = False,
    label: LabelOpt = None,
    engine: EngineOpt = None,
    allow_replace: Annotated[
        list[str] | None,
        typer.Option("--allow-replace", help="Agent whose live box may be replaced (repeat)."),
    ] = None,
    canary: CanaryOpt = 1,
    batch: BatchOpt = "5",
    max_failures: MaxFailuresOpt = 0,
    health_timeout: HealthTimeoutOpt = 300.0,
    upgrade_disk: Annotated[
        bool, typer.Option("--upgrade-disk", help="Grow the disk on resize (no way back down).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Preview only (its exit codes).")
    ] = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Apply infra changes (type, firewall, labels) across the fleet in batches.

    Needs --all, --agents or --label. Waves and halt rules are the rollouts' (--canary, --batch,
    --max-failures). A resize powers the box off, changes the type (disk kept unless
    --upgrade-disk), powers it on, waits for SSH and passes the health gate. Exit codes: 0 done
    (or nothing to do); 1 an agent failed or the run halted; 2 bad input, or a live box would be
    replaced without --allow-replace AGENT. --dry-run is `fatctl preview` (0/3/1).
    """
    from fatctl.cli.upgrade import parse_policy
    from fatctl.services.fleet.apply import guard

    if not (agents or all_agents or label is not None):
        raise BadInput("apply needs --all, --agents a,b or --label k=v (preview defaults to all)")
    policy = parse_policy(canary, batch, max_failures, health_timeout, 1)
    out = Output(json_out)
    fleet, specs = _fleet(agents, all_agents, label, engine)
    if dry_run:
        render_preview(out, fleet, "apply (dry run)")
        _finish_preview(fleet)
        return
    guard(fleet, _allowed(allow_replace))
    pending = [a.agent for a in fleet.agents if a.has_changes]
    if not pending:
        render_preview(out, fleet, "nothing to apply")
        return
    confirm(f"apply infra changes to {len(pending)} agent(s): {', '.join(pending)}?", yes)
    _render_apply(out, _run_apply(out, fleet, specs, policy, engine, upgrade_disk), fleet)


def _run_apply(
    out: Output,
    fleet: FleetPreview,
    specs: list[AgentSpec],
    policy: Any,
    engine: str | None,
    upgrade_disk: bool,
) -> Report:
    from fatctl.cli.layouts import box_layout
    from fatctl.infra import make_engine
    from fatctl.services.fleet.apply import ApplyRun, apply_fleet
    from fatctl.services.fleet.apply_gate import ssh_health_gate

    c = ctx()
    run = ApplyRun(
        db=c.engine,
        actor=c.actor,
        event=out.event,
        make_engine=lambda sink: make_engine(c.settings, engine, on_change=sink),
        gate=ssh_health_gate(c.engine, c.settings, box_layout(c.settings), policy.health_timeout_s),
        policy=policy,
        upgrade_disk=upgrade_disk,
    )
    return apply_fleet(run, fleet, specs)


def register(app: typer.Typer) -> None:
    app.command("preview")(preview_)
    app.command("apply")(apply_)
