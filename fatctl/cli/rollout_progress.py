"""Progress of a rollout for people: an overall bar and the current batch, on stderr.

It sits between the rollout engine and `Output.event`: every event still goes out as before (a
line for people, timestamped JSON for pipelines), and when stderr is a terminal and the output
is not JSON, one status line is redrawn after each event:

    [#########...........] 4/9 hosts  wave 2: box4 box5 (1/2 done)  1 failed

Nothing of it is written when stderr is not a TTY or with --json, so logs and pipes stay clean.
The view is built only from the events (`rollout.start`, `wave.start`, `host.done` with its
`progress` of `done/total`), so a resumed rollout shows where it really is.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TextIO

EventFn = Callable[..., None]
FAILED = ("failed", "rolled_back", "unreachable")


class RolloutProgress:
    """Wraps an event function; call `close()` when the rollout returns."""

    def __init__(
        self,
        emit: EventFn,
        *,
        json_mode: bool,
        stream: TextIO | None = None,
        width: int = 20,
    ) -> None:
        self.emit = emit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not json_mode and self.stream.isatty()
        self.width = width
        self.done = self.total = self.failed = 0
        self.wave: tuple[int, list[str]] | None = None
        self.wave_done: set[str] = set()
        self.lock = threading.Lock()
        self.drawn = False

    def __call__(self, kind: str, **fields: object) -> None:
        with self.lock:
            self._clear()
            self.emit(kind, **fields)
            self._update(kind, fields)
            self._draw()

    def _update(self, kind: str, fields: dict[str, object]) -> None:
        if kind == "rollout.start":
            self.total = int(str(fields.get("hosts", 0)))
        elif kind == "wave.start":
            hosts = fields.get("hosts")
            names = [str(h) for h in hosts] if isinstance(hosts, list) else []
            self.wave = (int(str(fields.get("wave", 0))), names)
            self.wave_done = set()
        elif kind == "host.done":
            done, _, total = str(fields.get("progress", "")).partition("/")
            if done.isdigit() and total.isdigit():
                self.done, self.total = int(done), int(total)
            self.wave_done.add(str(fields.get("agent", "")))
            self.failed += fields.get("phase") in FAILED

    def line(self) -> str:
        """The status line as drawn (without terminal control characters)."""
        total = max(self.total, 1)
        filled = min(self.width, self.width * self.done // total)
        bar = "#" * filled + "." * (self.width - filled)
        text = f"[{bar}] {self.done}/{self.total} hosts"
        if self.wave is not None:
            index, hosts = self.wave
            label = "canary" if index == 0 else f"wave {index}"
            shown = " ".join(hosts[:6]) + (" ..." if len(hosts) > 6 else "")
            text += f"  {label}: {shown} ({len(self.wave_done)}/{len(hosts)} done)"
        if self.failed:
            text += f"  {self.failed} failed"
        return text

    def _draw(self) -> None:
        if self.enabled and self.total:
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()
            self.drawn = True

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.drawn = False

    def close(self) -> None:
        """Leave the final bar on its own line, so the table below starts clean."""
        with self.lock:
            if self.drawn:
                self.stream.write("\n")
                self.stream.flush()
                self.drawn = False
