"""What the serving commands share: reading secrets from stdin (bounded, UTF-8, never from
arguments) and pushing one change to an agent and its box, rendered for people or pipelines."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from fatctl.cli.bounded_input import read_stdin
from fatctl.cli.context import ctx
from fatctl.cli.output import Output
from fatctl.errors import BadInput
from fatctl.sensitive import Sensitive
from fatctl.serving import MAX_SECRET_BYTES

if TYPE_CHECKING:
    from fatctl.services.serving.push import ChangeFn


def stdin_lines(what: str, count: int) -> list[Sensitive]:
    """`count` non-empty lines from stdin: refused from a terminal, when too large, not UTF-8,
    or with a different number of lines (a value is never echoed)."""
    if sys.stdin.isatty():
        raise BadInput(f"pipe the {what} on stdin; it is never taken from arguments")
    text = read_stdin(what, MAX_SECRET_BYTES)
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if len(lines) != count:
        raise BadInput(f"expected {count} line(s) on stdin for the {what}, got {len(lines)}")
    return [Sensitive(line) for line in lines]


def push_and_show(
    agent: str, change: ChangeFn | None, dry_run: bool, json_out: bool, title: str
) -> None:
    """Record `change`, bring the box to it (or preview), and print the outcome."""
    from fatctl.cli.layouts import files_layout
    from fatctl.cli.options import agent_arg
    from fatctl.services.serving.push import push

    agent = agent_arg(agent) or ""
    c = ctx()
    result = push(c.engine, c.keyring, c.settings, agent, c.actor, change, dry_run=dry_run,
                  layout=files_layout(c.settings))  # fmt: skip
    out = Output(json_out)
    if json_out:
        out.data(result.row())
        return
    row = result.row()
    shown = {k: v for k, v in row.items() if k != "diff"}
    shown["changed"] = ", ".join(result.changed) or "-"
    out.record(shown, title=title)
    if dry_run and result.diff:
        sys.stdout.write(result.diff)
