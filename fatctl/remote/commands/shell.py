"""Generic command shapes: an argv joined for a POSIX shell, privilege escalation, and scripts."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def run(argv: Sequence[str]) -> str:
    """One program with its arguments, quoted for `sh -c` on the remote side."""
    if not argv:
        raise ValueError("empty command")
    return shlex.join(argv)


def script(*lines: str) -> str:
    """Several shell lines run under `set -eu`, so the first failing step fails the whole."""
    return "; ".join(("set -eu", *lines))


def sudo(command: str, user: str | None = None) -> str:
    """Run `command` through `sudo -n sh -c` (non-interactive: never waits on a password)."""
    argv = ["sudo", "-n"]
    if user:
        argv += ["-u", user]
    return shlex.join([*argv, "--", "sh", "-c", command])


def maybe_sudo(command: str, needed: bool) -> str:
    """`sudo(command)` when the login user lacks the rights, the command as is otherwise."""
    return sudo(command) if needed else command
