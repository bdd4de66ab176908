"""Reading operator input (stdin or a named file) with a size bound and a UTF-8 check.

Every value fatctl takes from a stream is small (a key, a token, a public key line), so a read
stops one byte past the limit: `--file /dev/zero` or a 100 MB pipe is refused after a few KiB
instead of filling memory, and bytes that are not UTF-8 are a one-line BadInput (exit 2), never
a UnicodeDecodeError traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

from fatctl.errors import BadInput


def read_bounded(stream: BinaryIO, what: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8 text from `stream`; BadInput when larger or not UTF-8."""
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise BadInput(f"the {what} is larger than {limit} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"the {what} is not UTF-8 text") from None


def read_stdin(what: str, limit: int) -> str:
    """`read_bounded` on stdin, whichever form it has (tests may replace it with a text stream)."""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is not None:
        return read_bounded(binary, f"{what} on stdin", limit)
    text = sys.stdin.read(limit + 1)
    if len(text.encode("utf-8", errors="surrogateescape")) > limit:
        raise BadInput(f"the {what} on stdin is larger than {limit} bytes")
    return text


def read_file(path: Path, what: str, limit: int) -> str:
    """`read_bounded` on a file (or `-` for stdin); an unreadable file is BadInput too."""
    if str(path) == "-":
        return read_stdin(what, limit)
    try:
        with path.open("rb") as stream:
            return read_bounded(stream, f"{what} in {path}", limit)
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
