"""Reading a running command's output: both streams, line by line, with an overall deadline.

Kept apart from `runner` so the waiting logic is small and testable; it only uses the channel's
duck-typed methods (recv, recv_stderr, fileno, exit_status_ready), not the SSH library itself.
"""

from __future__ import annotations

import codecs
import select
import time
from collections.abc import Callable
from typing import Any

from fatctl.errors import RemoteError

OutputFn = Callable[[str, str], None]
_CHUNK = 32768
EOF_GRACE_S = 0.5


class LineSplitter:
    """Accumulates bytes for one stream and hands complete lines to a callback."""

    def __init__(self, stream: str, on_output: OutputFn | None, raw: bool = False) -> None:
        self.stream = stream
        self.on_output = on_output
        self.data = bytearray()
        self._pending = b""
        # raw: hand over text as it arrives (for a terminal), decoding split UTF-8 sequences.
        self._raw = codecs.getincrementaldecoder("utf-8")(errors="replace") if raw else None

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if self.on_output is None:
            return
        if self._raw is not None:
            self.on_output(self.stream, self._raw.decode(chunk))
            return
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            self.on_output(self.stream, line.decode(errors="replace"))

    def finish(self) -> str:
        if self.on_output is not None and self._pending:
            self.on_output(self.stream, self._pending.decode(errors="replace"))
            self._pending = b""
        return self.data.decode(errors="replace")


def _drain(chan: Any, out: LineSplitter, err: LineSplitter) -> bool:
    """Read whatever is buffered now; True when something was read."""
    got = False
    while chan.recv_ready():
        out.feed(chan.recv(_CHUNK))
        got = True
    while chan.recv_stderr_ready():
        err.feed(chan.recv_stderr(_CHUNK))
        got = True
    return got


def collect(
    chan: Any, timeout: float | None, on_output: OutputFn | None, label: str, raw: bool = False
) -> tuple[str, str, int]:
    """Wait for the command to exit, gathering stdout and stderr; return them and the exit code."""
    out, err = LineSplitter("out", on_output, raw), LineSplitter("err", on_output, raw)
    deadline = None if timeout is None else time.monotonic() + timeout
    fd = chan.fileno()  # becomes readable on stdout, stderr, EOF or close
    exited_at: float | None = None
    while True:
        _drain(chan, out, err)
        if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
            # sshd sends the exit status when it reaps the command, which can be before it has
            # forwarded the last output (a final stderr line went missing that way): the end is
            # EOF. A command that leaves a background process holding its output open never
            # gets one, so EOF is waited for only briefly.
            now = time.monotonic()
            exited_at = exited_at or now
            if chan.eof_received or chan.closed or now - exited_at >= EOF_GRACE_S:
                break
        wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
        if wait <= 0:
            raise RemoteError(f"{label}: command timed out after {timeout:g}s")
        select.select([fd], [], [], wait if exited_at is None else min(wait, 0.02))
    code = chan.recv_exit_status()
    _drain(chan, out, err)
    return out.finish(), err.finish(), code
