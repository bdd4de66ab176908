"""The one output helper: tables for people, JSON for pipelines, one-line errors for both.

Every command renders through `Output`, so `--json` behaves the same everywhere. rich is
imported only when a table is actually drawn, and colours are off when stdout is not a TTY.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fatctl.sensitive import Sensitive


def _default(obj: object) -> object:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Sensitive):
        return str(obj)
    if isinstance(obj, bytes):
        return "<bytes>"
    return str(obj)


def to_json(data: object) -> str:
    return json.dumps(data, default=_default, sort_keys=False)


def is_interactive() -> bool:
    """True when a person is at a terminal and we are not in CI."""
    return sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("CI")


class Output:
    """Renders results for one command invocation."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode

    def data(self, payload: object) -> None:
        """Machine-readable result (JSON mode) — printed as-is."""
        sys.stdout.write(to_json(payload) + "\n")

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        title: str | None = None,
        json_payload: object | None = None,
    ) -> None:
        """A table for people, or the rows (or `json_payload`) as JSON."""
        if self.json_mode:
            self.data(list(rows) if json_payload is None else json_payload)
            return
        if not rows:
            self.message(f"no {title or 'rows'}")
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        Console(no_color=not sys.stdout.isatty(), soft_wrap=True).print(table)

    def record(self, item: Mapping[str, Any], title: str | None = None) -> None:
        """One object: key/value lines for people, a JSON object for pipelines."""
        if self.json_mode:
            self.data(dict(item))
            return
        if title:
            sys.stdout.write(f"{title}\n")
        width = max((len(k) for k in item), default=0)
        for key, value in item.items():
            sys.stdout.write(f"  {key.ljust(width)}  {'' if value is None else value}\n")

    def message(self, text: str) -> None:
        """Human progress or confirmation; in JSON mode it goes to stderr to keep stdout clean."""
        stream = sys.stderr if self.json_mode else sys.stdout
        stream.write(text + "\n")

    def event(self, kind: str, **fields: object) -> None:
        """A timestamped JSON event (JSON mode) or a short line (people)."""
        if self.json_mode:
            payload = {"ts": datetime.now(UTC).isoformat(), "event": kind, **fields}
            sys.stdout.write(to_json(payload) + "\n")
            sys.stdout.flush()
        else:
            extras = " ".join(f"{k}={v}" for k, v in fields.items())
            sys.stdout.write(f"{kind} {extras}".rstrip() + "\n")
            sys.stdout.flush()


def error_line(message: str) -> None:
    sys.stderr.write(f"fatctl: error: {message}\n")
