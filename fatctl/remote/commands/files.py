"""Atomic file writes and symlink switches: a reader on the box sees the old or the new, never half.

Content always arrives on the command's stdin; the command line carries only paths, the mode
and the owner, so a secret never shows in `ps`, in shell history or in fatctl's own logs.
"""

from __future__ import annotations

import posixpath
import shlex

from fatctl.remote.commands.shell import script


def _check_path(path: str) -> str:
    if not path.startswith("/") or path.endswith("/") or "\n" in path:
        raise ValueError(f"remote path must be absolute and name a file: {path!r}")
    return path


def _owner_spec(owner: str | None, group: str | None) -> str | None:
    if not owner and not group:
        return None
    return f"{owner or ''}:{group or ''}" if group else str(owner)


def atomic_write(
    path: str, mode: int = 0o600, owner: str | None = None, group: str | None = None
) -> str:
    """Write stdin to `path` via a temp file in the same directory, then rename over it.

    The temp file is created under umask 077 and removed if any step fails; mode and owner are
    set before the rename so the final name never exists with looser permissions.
    """
    target = _check_path(path)
    directory = posixpath.dirname(target) or "/"
    lines = [
        "umask 077",
        f"tmp=$(mktemp {shlex.quote(directory + '/.fatctl.XXXXXX')})",
        "trap 'rm -f \"$tmp\"' EXIT",
        'cat > "$tmp"',
        f'chmod {mode:04o} "$tmp"',
    ]
    spec = _owner_spec(owner, group)
    if spec:
        lines.append(f'chown {shlex.quote(spec)} "$tmp"')
    lines += [f'mv -f "$tmp" {shlex.quote(target)}', "trap - EXIT"]
    return script(*lines)


def symlink_switch(link: str, target: str) -> str:
    """Point `link` at `target` atomically: make a new link beside it, then rename over it."""
    link = _check_path(link)
    tmp = f"{link}.fatctl-new"
    return script(
        f"ln -sfn {shlex.quote(target)} {shlex.quote(tmp)}",
        f"mv -Tf {shlex.quote(tmp)} {shlex.quote(link)}",
    )


def read_link(link: str) -> str:
    """Print where `link` points (empty output when it does not exist)."""
    return f"readlink {shlex.quote(_check_path(link))} || true"
