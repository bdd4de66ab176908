"""Progress for people on a terminal, drawn with rich.progress, between a flow and its events.

Every event still goes out unchanged (a line for people, timestamped JSON for pipelines); when
stderr is a terminal and the output is not JSON, a rich progress bar sized to the terminal is
redrawn after each event, below the lines. Nothing of it is written when stderr is not a TTY
or with --json, so logs and pipes stay clean. Each view is built only from the events, so a
resumed run shows where it really is.

- `RolloutProgress`: hosts done of all, the current wave and its hosts, failures.
- `StepProgress`: one agent's provision or destroy, step by step.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

EventFn = Callable[..., None]
FAILED = ("failed", "rolled_back", "unreachable")
# A step that ends, whichever way: each one moves the bar.
STEP_ENDS = ("step.done", "step.failed", "step.ok", "step.kept", "step.skipped", "step.unchanged")


class _LiveView:
    """A rich Progress with one task, redrawn by hand after each event (no refresh thread)."""

    def __init__(self, emit: EventFn, *, json_mode: bool, stream: TextIO | None) -> None:
        self.emit = emit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not json_mode and self.stream.isatty()
        self.lock = threading.Lock()
        self.progress: Progress | None = None
        self.task = TaskID(0)

    def _start(self, total: int) -> None:
        if not self.enabled or self.progress is not None:
            return
        console = Console(file=self.stream, force_terminal=True, highlight=False)
        # Lines printed to a terminal stdout go above the bar; a piped stdout stays untouched.
        to_terminal = sys.stdout.isatty()
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, auto_refresh=False,
            redirect_stdout=to_terminal, redirect_stderr=False,
        )  # fmt: skip
        self.progress.start()
        self.task = self.progress.add_task("", total=max(total, 1))

    def _show(self, completed: int, total: int, description: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=completed, total=max(total, 1),
                                 description=description)  # fmt: skip
            self.progress.refresh()

    def close(self) -> None:
        """Leave the final bar on screen, so the table below starts clean."""
        with self.lock:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None


class RolloutProgress(_LiveView):
    """Wraps a rollout's event function; call `close()` when the rollout returns."""

    def __init__(self, emit: EventFn, *, json_mode: bool, stream: TextIO | None = None) -> None:
        super().__init__(emit, json_mode=json_mode, stream=stream)
        self.done = self.total = self.failed = 0
        self.wave: tuple[int, list[str]] | None = None
        self.wave_done: set[str] = set()

    def __call__(self, kind: str, **fields: object) -> None:
        with self.lock:
            self.emit(kind, **fields)
            self._update(kind, fields)
            if self.total:
                self._start(self.total)
                self._show(self.done, self.total, self.description())

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

    def description(self) -> str:
        """The current wave and failures, as shown beside the bar."""
        text = ""
        if self.wave is not None:
            index, hosts = self.wave
            label = "canary" if index == 0 else f"wave {index}"
            shown = " ".join(hosts[:6]) + (" ..." if len(hosts) > 6 else "")
            text = f"{label}: {shown} ({len(self.wave_done)}/{len(hosts)} done)"
        if self.failed:
            text += f"  {self.failed} failed"
        return text

    def line(self) -> str:
        """The state as text: hosts done of all, then the description."""
        return f"{self.done}/{self.total} hosts  {self.description()}".rstrip()


class StepProgress(_LiveView):
    """Wraps a provision's or destroy's event function: the current step of how many."""

    def __init__(
        self, emit: EventFn, steps: int, *, json_mode: bool, stream: TextIO | None = None
    ) -> None:
        super().__init__(emit, json_mode=json_mode, stream=stream)
        self.steps = steps
        self.ended = 0
        self.current = ""

    def __call__(self, kind: str, **fields: object) -> None:
        with self.lock:
            self.emit(kind, **fields)
            if kind == "step.start":
                self.current = f"{fields.get('agent', '')}: {fields.get('step', '')}"
            elif kind in STEP_ENDS:
                self.ended += 1
                self.current = f"{fields.get('agent', '')}: {fields.get('step', '')} " + (
                    "FAILED" if kind == "step.failed" else kind.removeprefix("step.")
                )
            self._start(self.steps)
            self._show(min(self.ended, self.steps), self.steps, self.current)
