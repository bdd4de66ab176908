"""The SSH half of `fatctl keys`: push an agent's customer keys, rotate the operator key.

Registered onto the `keys` sub-app by `register`; the database half (add/list/revoke) lives
in `fatctl.cli.keys`, which calls `push_after_change` so a customer key change reaches the box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import DryRunOpt, JsonOpt, ParallelOpt
from fatctl.cli.output import Output


def push_after_change(agent: str, out: Output) -> None:
    """Push `agent`'s customer keys after a database change; a failure names the retry command."""
    from fatctl.errors import RemoteError
    from fatctl.services.access.authorized_keys import push_customer_keys

    try:
        push_customer_keys(ctx().engine, ctx().settings, agent, actor=ctx().actor)
    except RemoteError as exc:
        raise RemoteError(
            f"recorded, but not pushed to the box: {exc.message}",
            hint=f"retry with `fatctl keys push --agent {agent}`",
        ) from None
    out.message(f"pushed customer keys to {agent}")


def _preview_push(agent: str, json_out: bool) -> None:
    """The change a push would make to the customer's authorized_keys (public keys only)."""
    import difflib
    import sys

    from fatctl.services.access.authorized_keys import preview_customer_keys

    current, wanted = preview_customer_keys(ctx().engine, ctx().settings, agent)
    if json_out:
        Output(True).data({"agent": agent, "changed": current != wanted, "current": current,
                           "wanted": wanted})  # fmt: skip
        return
    before, after = current.splitlines(True), wanted.splitlines(True)
    diff = difflib.unified_diff(before, after, "authorized_keys (box)", "after push")
    sys.stdout.write("".join(diff) or f"{agent}: authorized_keys already as wanted\n")


def push(
    agent: Annotated[str, typer.Option("--agent", help="The agent whose box to update.")],
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Make the box's customer authorized_keys match the database (managed block only)."""
    from fatctl.cli.options import agent_arg
    from fatctl.services.access.authorized_keys import push_customer_keys

    agent = agent_arg(agent) or ""
    if dry_run:
        _preview_push(agent, json_out)
        return
    fps = push_customer_keys(ctx().engine, ctx().settings, agent, actor=ctx().actor)
    Output(json_out).record({"agent": agent, "keys": ", ".join(fps) or "(none)"}, title="pushed")


def rotate_operator(
    new_key: Annotated[
        Path, typer.Option("--new-key", help="Private key file of the new operator key.")
    ],
    parallel: ParallelOpt = 10,
    json_out: JsonOpt = False,
) -> None:
    """Add the new operator key on every box, verify a login with it, remove the old one.

    Boxes that are down are reported; run the same command again later to finish them. The old
    key stays valid in the database until every box is rotated.
    """
    from fatctl.remote.runner import Pool
    from fatctl.services.access.rotation import rotate_operator as rotate

    out = Output(json_out)
    with Pool() as pool:
        outcomes = rotate(
            ctx().engine,
            ctx().settings,
            pool,
            new_key_file=str(new_key),
            actor=ctx().actor,
            parallel=parallel,
            on_host=None
            if json_out
            else lambda o: out.event("host", agent=o.agent, status=o.status),
        )
    rows = [o.__dict__ for o in outcomes]
    out.table(rows, ("agent", "host", "status", "error"), title="operator key rotation")
    pending = [o.agent for o in outcomes if o.status == "failed"]
    if pending:
        out.message(f"{len(pending)} box(es) not rotated: run the same command again to resume")
        raise typer.Exit(1)
    out.message("rotated: set FATCTL_OPERATOR_KEY_FILE / ssh.operator_key_file to the new key")


def register(app: typer.Typer) -> None:
    app.command("push")(push)
    app.command("rotate-operator")(rotate_operator)
