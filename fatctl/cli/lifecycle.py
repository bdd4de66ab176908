"""`fatctl move`, `fatctl suspend`, `fatctl resume`, `fatctl archive` (and `fatctl archive
purge`): thin commands over `fatctl.services.lifecycle`. Parse, call, render.

Each is a resumable op: a run that failed or was killed is finished by running the same command
again. Progress is one line per step for people, one JSON event per line with --json, ending
in a `<op>.result` event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.context import confirm, ctx
from fatctl.cli.options import (
    AgentArg,
    DryRunOpt,
    EngineOpt,
    JsonOpt,
    WaitOpt,
    YesOpt,
    agent_arg,
    lease_wait,
)
from fatctl.cli.output import Output
from fatctl.errors import BadInput

if TYPE_CHECKING:
    from fatctl.services.lifecycle.suspend import Context, LifecycleResult

NoBackupOpt = Annotated[
    bool,
    typer.Option("--no-backup", help="Do not back the state up first (recorded in the audit)."),
]
NoBoxOpt = Annotated[
    bool, typer.Option("--no-box", help="No box to reach (API-only sandbox); needs --no-backup.")
]
PURGE = "purge"  # `fatctl archive purge`: the word, where an agent's name would be


def _context(out: Output, engine: str | None, no_box: bool) -> Context:
    from fatctl.cli.provision import _progress
    from fatctl.infra import make_engine
    from fatctl.services.lifecycle.suspend import Context

    c = ctx()
    return Context(c.engine, c.keyring, c.settings, make_engine(c.settings, engine), c.actor,
                   emit=_progress(out), skip_box=no_box)  # fmt: skip


def _show(out: Output, done: LifecycleResult) -> None:
    if out.json_mode:
        out.event(f"{done.kind}.result", **done.as_dict())
    elif done.kind == "move-abandon":
        where = f"old server {done.detail['server_id']} in {done.detail['location']}"
        out.message(f"agent {done.agent}: {done.state} (move op {done.op_id} abandoned; {where})")
    else:
        out.message(f"agent {done.agent}: {done.state} ({done.kind} op {done.op_id} done)")


def suspend(
    agent: AgentArg,
    snapshot: Annotated[
        bool, typer.Option("--snapshot", help="Snapshot the server before deleting it (billed).")
    ] = False,
    no_backup: NoBackupOpt = False,
    no_box: NoBoxOpt = False,
    engine: EngineOpt = None,
    yes: YesOpt = False,
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Back up, then delete the agent's server so it stops billing; IPs, DNS and data kept."""
    from fatctl.services.lifecycle.suspend import suspend as run

    name, out = agent_arg(agent) or "", Output(json_out)
    lc = _context(out, engine, no_box)
    confirm(f"Suspend agent {name} (its server is deleted)?", yes)
    with lease_wait(wait):
        _show(out, run(lc, name, snapshot=snapshot, no_backup=no_backup))


def resume(
    agent: AgentArg,
    no_restore: Annotated[
        bool, typer.Option("--no-restore", help="Start on an empty state (no backup restored).")
    ] = False,
    no_box: NoBoxOpt = False,
    engine: EngineOpt = None,
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Bring a suspended agent back on a new server on its kept IPs, with its backup restored.

    The backup is the one its suspend took, restored before the gateway first starts, so the
    gateway never runs on an empty state."""
    from fatctl.services.lifecycle.suspend import resume as run

    name, out = agent_arg(agent) or "", Output(json_out)
    lc = _context(out, engine, no_box)
    with lease_wait(wait):
        _show(out, run(lc, name, no_restore=no_restore))


def archive(
    agent: Annotated[
        str, typer.Argument(metavar="AGENT|purge", help="The agent, or `purge` (see below).")
    ],
    no_backup: NoBackupOpt = False,
    no_box: NoBoxOpt = False,
    dry_run: DryRunOpt = False,
    engine: EngineOpt = None,
    yes: YesOpt = False,
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Archive a churned agent: back up, release its server, IPs and DNS, keep its data.

    A suspend's snapshot is deleted too (it is billed; the backup is what is kept).
    `fatctl archive purge` deletes, for every archived agent past its purge date
    (FATCTL_ARCHIVE_RETENTION_DAYS after its archive), its R2 data and backups and every
    sealed secret, its backup key among them (--dry-run lists them)."""
    out = Output(json_out)
    if agent == PURGE:
        _purge(out, dry_run=dry_run, yes=yes, wait=wait)
        return
    from fatctl.errors import BadInput
    from fatctl.services.lifecycle.archive import archive as run

    if dry_run:
        raise BadInput("--dry-run is for `fatctl archive purge`")
    name = agent_arg(agent) or ""
    lc = _context(out, engine, no_box)
    confirm(f"Archive agent {name} (server, IPs and DNS released)?", yes)
    with lease_wait(wait):
        _show(out, run(lc, name, no_backup=no_backup))


def _purge(out: Output, *, dry_run: bool, yes: bool, wait: float) -> None:
    from fatctl.cli.provision import _progress
    from fatctl.services.lifecycle.archive import PurgeRun, purge, purge_candidates

    c = ctx()
    lc = PurgeRun(c.engine, c.keyring, c.settings, c.actor, emit=_progress(out))
    due = purge_candidates(lc)
    rows = [{"agent": d.agent, "purge_after": d.purge_after,
             "resuming": d.resuming} for d in due]  # fmt: skip
    if dry_run or not due:
        verb = "would be purged (dry run: nothing changed)" if dry_run else "due for purge"
        out.table(rows, ("agent", "purge_after", "resuming"), title=f"archived agents {verb}")
        return
    confirm(f"Purge {len(due)} archived agent(s): data, backups and keys, for good?", yes)
    with lease_wait(wait):
        done = purge(lc, [d.agent for d in due])
    if out.json_mode:
        for one in done:
            _show(out, one)
    else:
        out.table([{"agent": d.agent, "state": d.state} for d in done], ("agent", "state"),
                  title="purged")  # fmt: skip


def move(
    agent: AgentArg,
    location: Annotated[
        str | None,
        typer.Option("--location", help="The Hetzner location to move to (fsn1, hel1...)."),
    ] = None,
    server_type: Annotated[
        str | None, typer.Option("--type", help="A server type there (default: the current).")
    ] = None,
    abandon: Annotated[
        bool,
        typer.Option(
            "--abandon",
            help="Give up the unfinished move: the agent stays on its old box (the replacement "
            "deleted, DNS back, the old gateway started).",
        ),
    ] = False,
    no_backup: NoBackupOpt = False,
    no_box: NoBoxOpt = False,
    dry_run: DryRunOpt = False,
    engine: EngineOpt = None,
    yes: YesOpt = False,
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Move the agent to a new server in another location, keeping the customer's state.

    Backs up (the old gateway stopped, and kept stopped), makes a new server on new IPs with
    the backup restored before its gateway starts, switches DNS, and releases the old server
    and IPs only once the new box is healthy. A rerun finishes it; `--abandon` gives it up
    (until the old box is retired) and keeps the agent where it was."""
    from fatctl.services.lifecycle.move import move as run
    from fatctl.services.lifecycle.move import preview

    name, out = agent_arg(agent) or "", Output(json_out)
    if abandon:
        if location or server_type or no_backup or dry_run:
            raise BadInput("--abandon takes none of --location, --type, --no-backup, --dry-run")
        _abandon(out, _context(out, engine, no_box), name, yes=yes, wait=wait)
        return
    if not location:
        raise BadInput("move needs --location L (or --abandon to give up an unfinished move)")
    lc = _context(out, engine, no_box)
    if dry_run:
        planned = preview(lc, name, location=location, server_type=server_type,
                          no_backup=no_backup)  # fmt: skip
        out.record(planned, title=f"move {name} (dry run: nothing changed)")
        return
    confirm(f"Move agent {name} to {location} (a new server; the old one deleted)?", yes)
    with lease_wait(wait):
        _show(out, run(lc, name, location=location, server_type=server_type, no_backup=no_backup))


def _abandon(out: Output, lc: Context, name: str, *, yes: bool, wait: float) -> None:
    from fatctl.services.lifecycle.move_abandon import abandon

    confirm(f"Give up the move of {name} (its new server deleted, the old one kept)?", yes)
    with lease_wait(wait):
        _show(out, abandon(lc, name))


def register(app: typer.Typer) -> None:
    app.command("move")(move)
    app.command("suspend")(suspend)
    app.command("resume")(resume)
    app.command("archive")(archive)
