"""What converge would change on one box, as pure functions: desired files, box files, diffs.

The desired files are `cloud_init.render.render_files(spec)`, minus anything that could hold a
secret (the environment files fatctl delivers over SSH are never rendered, and are refused here
even if a template started to produce one). The box's files arrive as the output of
`fatctl.remote.commands.converge.read_files`. Diffs are unified diffs with `redact` applied, so a
credential-shaped line that somehow reached a file is shown as [REDACTED], never in clear.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloud_init import layout as L
from cloud_init.files import RenderedFile
from fatctl.sensitive import redact

# Files that hold secrets: converge neither reads, diffs nor writes them.
SECRET_PATHS = frozenset({L.GATEWAY_ENV, L.R2_ENV})


def is_secret_path(path: str) -> bool:
    return path in SECRET_PATHS or path.endswith(".env") or "/.ssh/" in path


@dataclass(frozen=True)
class BoxFile:
    content: bytes
    mode: int
    owner: str


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # added, changed, mode
    diff: str


def desired_files(files: Mapping[str, RenderedFile]) -> dict[str, RenderedFile]:
    return {p: f for p, f in sorted(files.items()) if not is_secret_path(p)}


def digest(files: Mapping[str, RenderedFile]) -> str:
    """A short fingerprint of a box's desired configuration (recorded as the step's target)."""
    h = hashlib.sha256()
    for path, f in sorted(files.items()):
        h.update(f"{path}\0{f.mode:o}\0{f.owner}\0".encode())
        h.update(hashlib.sha256(f.content.encode()).digest())
    return h.hexdigest()[:16]


def box_digest(box: Mapping[str, BoxFile | None]) -> str:
    """The same kind of fingerprint for what the box holds now (`from` of the step)."""
    h = hashlib.sha256()
    for path, f in sorted(box.items()):
        if f is not None:
            h.update(f"{path}\0{f.mode:o}\0{f.owner}\0".encode())
            h.update(hashlib.sha256(f.content).digest())
    return h.hexdigest()[:16]


def parse_read(paths: Sequence[str], stdout: str) -> dict[str, BoxFile | None]:
    """Parse `read_files` output; ValueError when it is not what the builder prints."""
    out: dict[str, BoxFile | None] = {}
    lines = stdout.splitlines()
    i = 0
    while i < len(lines):
        head = lines[i].split()
        i += 1
        if len(head) < 3 or head[0] != "==" or not head[1].isdigit():
            continue
        path = paths[int(head[1])]
        if head[2] == "absent":
            out[path] = None
            continue
        if len(head) != 5 or i >= len(lines):
            raise ValueError(f"unreadable file record for {path}")
        try:
            content = base64.b64decode(lines[i], validate=True)
        except binascii.Error:
            raise ValueError(f"unreadable content for {path}") from None
        i += 1
        out[path] = BoxFile(content, int(head[3], 8), head[4])
    missing = [p for p in paths if p not in out]
    if missing:
        raise ValueError(f"box did not report {missing[0]}")
    return out


def differs(want: RenderedFile, have: BoxFile | None, owners: bool) -> bool:
    if have is None:
        return True
    if have.content != want.content.encode() or have.mode != want.mode:
        return True
    return owners and have.owner != want.owner


def changes(
    want: Mapping[str, RenderedFile], have: Mapping[str, BoxFile | None], owners: bool
) -> list[Change]:
    """One `Change` per file that would be written, with its redacted unified diff."""
    out = []
    for path, f in want.items():
        box = have.get(path)
        if not differs(f, box, owners):
            continue
        if box is None:
            out.append(Change(path, "added", _diff(path, "", f.content)))
            continue
        old = box.content.decode("utf-8", errors="replace")
        if old == f.content:
            what = f"mode {box.mode:04o} -> {f.mode:04o}" if box.mode != f.mode else ""
            what = what or f"owner {box.owner} -> {f.owner}"
            out.append(Change(path, "mode", f"--- {path}\n+++ {path}\n# {what}\n"))
            continue
        out.append(Change(path, "changed", _diff(path, old, f.content)))
    return out


def _diff(path: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path} (box)" if old else "/dev/null",
        tofile=f"{path} (rendered)",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return redact(text)
