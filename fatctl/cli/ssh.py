"""`fatctl ssh AGENT [-- CMD]`: a shell or one command on a box, with the pinned host key.

`--print-config` prints an OpenSSH `Host` stanza and writes fatctl's known_hosts file so that
plain `ssh AGENT` pins the same key (StrictHostKeyChecking yes, never trust on first use).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import AgentArg

if TYPE_CHECKING:
    from fatctl.remote.target import Target


def _write_known_hosts(target: Target) -> str:
    from fatctl.private_paths import private_dir
    from fatctl.remote.openssh_config import merge_known_hosts

    path = private_dir(ctx().settings.data_dir) / "known_hosts"
    existing = path.read_text() if path.exists() else ""
    text = merge_known_hosts(existing, [t for t in (target, target.jump) if t is not None])
    tmp = path.with_name(f".known_hosts.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic: a concurrent `ssh` reads the old or the new file
    return str(path)


def _one_command(target: Target, argv: list[str], stdin: bytes | None) -> int:
    from fatctl.cli.output import echo_stream
    from fatctl.remote.commands.shell import run
    from fatctl.remote.runner import Pool

    # One argument is taken as a shell command line (like ssh); several are quoted as argv.
    command = argv[0] if len(argv) == 1 else run(argv)
    with Pool() as pool:
        result = pool.get(target).run(command, stdin=stdin, on_output=echo_stream, raw=True)
    return result.exit_code if result.exit_code is not None else 1


def ssh(
    agent: AgentArg,
    command: Annotated[
        list[str] | None, typer.Argument(help="Command to run (after --); none for a shell.")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print an OpenSSH config stanza and exit.")
    ] = False,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Send this process's stdin to the command.")
    ] = False,
) -> None:
    """Open a shell on AGENT's box as the operator user, or run `-- CMD` and exit with its code."""
    from fatctl.cli.options import agent_arg
    from fatctl.services.common.targets import agent_target

    target = agent_target(ctx().engine, ctx().settings, agent_arg(agent) or "")
    if print_config:
        from fatctl.remote.openssh_config import config_stanza, known_hosts_lines

        known = _write_known_hosts(target)
        sys.stdout.write(config_stanza(target, known))
        # Commented, so the whole output can be saved as an ssh_config file as is.
        lines = "".join(f"#   {line}\n" for line in known_hosts_lines(target))
        sys.stdout.write(f"\n# known_hosts lines (written to {known}):\n{lines}")
        return
    if command:
        data = sys.stdin.buffer.read() if stdin else None  # only when asked: never block on a tty
        raise typer.Exit(_one_command(target, command, data))
    from fatctl.remote.runner import connect
    from fatctl.remote.runner_interactive import interactive_shell

    conn = connect(target)
    try:
        code = interactive_shell(conn)
    finally:
        conn.close()
    raise typer.Exit(code)
