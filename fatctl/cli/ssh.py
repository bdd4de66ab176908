"""`fatctl ssh AGENT [-- CMD]`: a shell or one command on a box, with the pinned host key.

`--print-config` prints an OpenSSH `Host` stanza and writes fatctl's known_hosts file so that
plain `ssh AGENT` pins the same key (StrictHostKeyChecking yes, never trust on first use).
Every shell or command leaves an `ssh` audit event: the command line, whether stdin was sent
(never what it held) and the exit status.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
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


def _one_command(target: Target, command: str, stdin: bytes | None) -> int:
    from fatctl.cli.output import echo_stream
    from fatctl.remote.runner import Pool

    with Pool() as pool:
        result = pool.get(target).run(command, stdin=stdin, on_output=echo_stream, raw=True)
    return result.exit_code if result.exit_code is not None else 1


def _shell(target: Target) -> int:
    from fatctl.remote.runner import connect
    from fatctl.remote.runner_interactive import interactive_shell

    conn = connect(target)
    try:
        return interactive_shell(conn)
    finally:
        conn.close()


def _audited(agent: str, command: str | None, stdin: bool, session: Callable[[], int]) -> int:
    """Run the session and leave one audit event however it ends: an operator's access to a
    box (a refused host key included) is what the trail is for."""
    from fatctl.errors import FatctlError
    from fatctl.services.common.audit import RemoteRun, audit_runs

    def record(code: int | None, error: str | None = None) -> None:
        run = RemoteRun(agent, command, code, error, stdin)
        audit_runs(ctx().engine, ctx().actor, "ssh", [run])

    try:
        code = session()
    except FatctlError as exc:
        record(None, exc.one_line())
        raise
    except KeyboardInterrupt:
        record(None, "interrupted")
        raise
    record(code)
    return code


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
    if not command:
        raise typer.Exit(_audited(target.name, None, False, lambda: _shell(target)))
    from fatctl.remote.commands.shell import run

    data = sys.stdin.buffer.read() if stdin else None  # only when asked: never block on a tty
    # One argument is taken as a shell command line (like ssh); several are quoted as argv.
    line = command[0] if len(command) == 1 else run(command)
    raise typer.Exit(_audited(target.name, line, stdin, lambda: _one_command(target, line, data)))
