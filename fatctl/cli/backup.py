"""`fatctl backup now|list|verify|restore|keys`: the agent's state backups
(fatctl.services.backup).

Parse, call, render. Archives are taken, encrypted and uploaded by the box itself; fatctl asks
for them over SSH and keeps the record.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.context import chosen_targets, confirm, ctx
from fatctl.cli.options import (
    AgentArg,
    AgentsOrAllArg,
    AllReachableOpt,
    DryRunOpt,
    JsonOpt,
    WaitOpt,
    YesOpt,
    agent_lease,
    lease_wait,
)
from fatctl.cli.output import Output, exit_if_failed
from fatctl.errors import BadInput, FatctlError
from fatctl.services.common.leases import DESTROY_TTL_S

app = typer.Typer(
    help="State backups: take, list, verify, restore; keys for older agents.", no_args_is_help=True
)

# A backup's name as the box lists it: `<UTC stamp>-<kind>` (no path, no suffix).
AtOpt = Annotated[
    str | None,
    typer.Option("--at", metavar="NAME", help="A name from `backup list` (default: newest)."),
]
BACKUP_COLUMNS = ("name", "kind", "at", "size_bytes", "verified_at")


def backup_name(raw: str) -> str:
    """A backup's name, checked before it reaches a shell: `<stamp>-<kind>` only."""
    import re

    name = raw.strip().removeprefix("backups/").removesuffix(".tar.gz.age")
    if not re.fullmatch(r"\d{8}T\d{6}Z-[a-z][a-z0-9-]{0,23}", name):
        raise BadInput(f"--at wants a backup name like 20261207T030000Z-scheduled, not {raw!r}")
    return name


@app.command("now")
def now_cmd(
    agents: AgentsOrAllArg = None,
    all_agents: AllReachableOpt = False,
    stop_gateway: Annotated[
        bool, typer.Option("--stop-gateway", help="Stop the gateway while the archive is taken.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Take a state backup now: encrypted on the box, uploaded to the agent's R2 prefix."""
    from fatctl.remote.runner import Pool
    from fatctl.services.backup.on_box import take_backup

    c, targets = ctx(), chosen_targets(agents, all_agents)
    rows, failed = [], []
    with Pool() as pool:
        for target in targets:
            try:
                taken = take_backup(c.engine, pool, target, stop_gateway=stop_gateway,
                                    actor=c.actor)  # fmt: skip
                rows.append({**taken.as_dict(), "error": ""})
            except FatctlError as exc:
                failed.append(target.name)
                rows.append({"agent": target.name, "name": "", "size_bytes": 0,
                             "took_s": 0.0, "error": exc.one_line()})  # fmt: skip
    Output(json_out).table(rows, ("agent", "name", "size_bytes", "took_s", "error"),
                           title="state backups taken")  # fmt: skip
    exit_if_failed(failed, len(targets))


@app.command("list")
def list_cmd(agent: AgentArg, json_out: JsonOpt = False) -> None:
    """The agent's complete backups in R2, newest first."""
    from fatctl.remote.runner import Pool
    from fatctl.services.backup.on_box import list_backups
    from fatctl.services.common.targets import agent_target
    from fatctl.validation import agent_name

    c = ctx()
    target = agent_target(c.engine, c.settings, agent_name(agent))
    with Pool() as pool:
        rows = list_backups(c.engine, pool, target)
    Output(json_out).table(rows, BACKUP_COLUMNS, title=f"state backups of {agent}")


@app.command("verify")
def verify_cmd(agent: AgentArg, at: AtOpt = None, json_out: JsonOpt = False) -> None:
    """Open a backup in scratch space on the box and check it restores (the live state and
    the gateway are not touched)."""
    from fatctl.remote.runner import Pool
    from fatctl.services.backup.on_box import verify_backup
    from fatctl.services.common.targets import agent_target
    from fatctl.validation import agent_name

    name = backup_name(at) if at is not None else None
    c = ctx()
    target = agent_target(c.engine, c.settings, agent_name(agent))
    with Pool() as pool:
        answer = verify_backup(c.engine, c.keyring, pool, target, name=name, actor=c.actor)
    Output(json_out).record({"agent": agent, "name": answer.get("name"), "verified": True,
                             "preflight": answer.get("preflight")},
                            title=f"backup of {agent} opens")  # fmt: skip


@app.command("restore")
def restore_cmd(
    agent: AgentArg,
    at: AtOpt = None,
    yes: YesOpt = False,
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Put a backup back as the agent's state (the gateway is stopped meanwhile; the state it
    had is kept aside on the box), then wait for the box to be healthy."""
    from fatctl.pacing.poll import Backoff
    from fatctl.remote.runner import Pool
    from fatctl.services.backup.on_box import list_backups, restore_backup
    from fatctl.services.common.targets import agent_target
    from fatctl.validation import agent_name

    name = backup_name(at) if at is not None else None
    agent = agent_name(agent)
    with lease_wait(wait):  # a bad --wait is refused here, before anything is asked
        c = ctx()
        target = agent_target(c.engine, c.settings, agent)
        with Pool() as pool:
            if name is None:
                found = list_backups(c.engine, pool, target)
                if not found:
                    raise BadInput(f"agent {agent} has no backup to restore")
                name = str(found[0]["name"])
            confirm(f"restore {agent} to {name}, replacing its current state?", yes)
            with agent_lease(agent, ttl_s=DESTROY_TTL_S):
                answer = restore_backup(c.engine, c.keyring, pool, target, Backoff(timeout=300),
                                        name=name, actor=c.actor, outside_op=True)  # fmt: skip
    Output(json_out).record({"agent": agent, "name": name, "displaced": answer.get("displaced"),
                             "healthy": True}, title=f"restored {agent}")  # fmt: skip


@app.command("keys")
def keys_cmd(
    agent: AgentArg,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Make and deliver the backup key of an agent older than backup keys.

    Generates the age identity, seals it in the secret store and delivers fat-backup, the
    public recipient and the daily timer to the box (the identity stays sealed here). A key
    that exists is kept, so a rerun only re-delivers."""
    from fatctl.cli.serving_io import push_and_show
    from fatctl.services.backup.keys import backup_key_change

    push_and_show(agent, backup_key_change(ctx().keyring), dry_run, json_out,
                  title=f"backup key of {agent}")  # fmt: skip
