"""Secret files delivered to a box over SSH: content on stdin only, written atomically.

Secret content is never part of a command line, a result, an error or a log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fatctl.remote.commands.files import atomic_write
from fatctl.remote.commands.shell import maybe_sudo
from fatctl.sensitive import Sensitive

if TYPE_CHECKING:
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target


def deliver_file(
    pool: Pool,
    target: Target,
    path: str,
    content: Sensitive,
    *,
    mode: int = 0o600,
    owner: str = "root",
    group: str | None = None,
) -> None:
    """Write a secret file on the box atomically (temp + rename), with mode and owner set.

    The content travels on stdin only; any output of the remote command is redacted before
    it can reach an error message.
    """
    if not isinstance(content, Sensitive):
        raise TypeError("deliver_file takes a Sensitive value")  # forces callers to wrap secrets
    command = maybe_sudo(atomic_write(path, mode, owner, group), needed=owner != target.user)
    result = pool.get(target).run(command, stdin=content.reveal().encode())
    result.check(f"writing {path}", secrets=[content])
