"""The one output helper: tables for people, JSON or YAML for pipelines, one-line errors for both.

Every command renders through `Output`, so `--json` and the global flags (`-o table|json|yaml|
columns=a,b`, `--no-headers`, `-q`; fatctl.cli.global_flags) behave the same everywhere.
Unattended use is first-class: when stdout is not a terminal (pipes, CI logs) tables are plain
aligned text with no colour, no box drawing and no escape sequence, and nothing ever animates;
rich is imported only to draw a table for a person at a terminal, and then without colour when
NO_COLOR or CI is set. JSON events carry an ISO-8601 UTC timestamp `ts`; PyYAML is imported
only under `-o yaml`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import typer

from fatctl.clock import wall_clock
from fatctl.errors import BadInput
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


def _flag(name: str) -> bool:
    """An environment flag is on unless unset, empty, 0, false or no (CI=false is not CI)."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def in_ci() -> bool:
    return _flag("CI")


def is_interactive() -> bool:
    """True when a person is at a terminal and we are not in CI: only then may we ask."""
    return _isatty(sys.stdin) and _isatty(sys.stdout) and not in_ci()


def colour_allowed(stream: Any = None) -> bool:
    """Colour only on a terminal, and not when NO_COLOR (https://no-color.org) or CI is set."""
    return _isatty(stream or sys.stdout) and "NO_COLOR" not in os.environ and not in_ci()


def progress_allowed(stream: Any = None) -> bool:
    """Redrawn progress lines only for a person: a terminal, not CI, not TERM=dumb."""
    target = stream or sys.stderr
    return _isatty(target) and not in_ci() and os.environ.get("TERM") != "dumb"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams are not terminals
        return False


def utc_timestamp() -> str:
    """Now as ISO-8601 in UTC with milliseconds, e.g. 2026-11-21T21:00:00.123+00:00."""
    return wall_clock().isoformat(timespec="milliseconds")


def plain_table(rows: Sequence[Sequence[str]], columns: Sequence[str], headers: bool = True) -> str:
    """Aligned columns with a dashed rule under the header: greppable, diffable, no escapes."""
    widths = [len(c) for c in columns] if headers else [0] * len(columns)
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [columns, ["-" * w for w in widths], *rows] if headers else list(rows)
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cell(value: object) -> str:
    return "" if value is None else " ".join(str(value).split("\n"))


MACHINE_FORMATS = ("json", "yaml")


@dataclass
class Rendering:
    """How this invocation renders, as the global flags asked (`-o`, `--no-headers`, `-q`);
    one per process, set by fatctl.cli.main before the command runs."""

    format: str = "table"  # table | json | yaml | columns
    columns: tuple[str, ...] = ()
    no_headers: bool = False
    quiet: bool = False
    wrote_document: bool = False  # a result document (not an event) is on stdout


_RENDERING = Rendering()


def configure(rendering: Rendering | None = None) -> None:
    """Render this invocation as `rendering` (the defaults when None)."""
    global _RENDERING
    _RENDERING = rendering or Rendering()


def machine_readable() -> bool:
    """-o json|yaml (or --json) was asked for: commands take their machine-readable path."""
    return _RENDERING.format in MACHINE_FORMATS


def to_yaml(data: object) -> str:
    """One YAML document (`---` first, so a stream of them reads with safe_load_all), holding
    exactly what `to_json` would: the same types, the same masking."""
    import yaml

    plain = json.loads(to_json(data))
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, explicit_start=True)


class Output:
    """Renders results for one command invocation, in the format the global flags chose.

    `json_mode` (the command's `--json`) asks for the machine-readable path; `-o yaml` turns
    that path into YAML, so `json_mode` means "machine-readable": JSON or YAML.
    """

    def __init__(self, json_mode: bool = False) -> None:
        chosen = _RENDERING.format
        self.format = chosen if chosen in MACHINE_FORMATS or not json_mode else "json"
        self.json_mode = self.format in MACHINE_FORMATS

    def _document(self, payload: object) -> str:
        return to_yaml(payload) if self.format == "yaml" else to_json(payload) + "\n"

    def _for_people_only(self) -> bool:
        """True when `-q` hides this output: the default table, records and progress. Output
        in a format asked for with -o or --json is what a script reads, and still prints."""
        return _RENDERING.quiet and self.format == "table"

    def _columns(self, valid: Sequence[str]) -> Sequence[str]:
        """The columns to show: `-o columns=` (each one checked against `valid`) or all."""
        if self.format != "columns":
            return valid
        for name in _RENDERING.columns:
            if name not in valid:
                raise BadInput(f"unknown column {name!r}: the columns are {', '.join(valid)}")
        return _RENDERING.columns

    def data(self, payload: object) -> None:
        """Machine-readable result (JSON mode) — printed as-is."""
        _RENDERING.wrote_document = True
        sys.stdout.write(self._document(payload))

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        title: str | None = None,
        json_payload: object | None = None,
        highlight: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """A table for people, or the rows (or `json_payload`) as JSON. Rows for which
        `highlight` is true stand out at a terminal (the caller also says why in a column, so
        nothing is lost in a log)."""
        if self.json_mode:
            self.data(list(rows) if json_payload is None else json_payload)
            return
        columns = self._columns(columns)
        if self._for_people_only():
            return
        if not rows:  # without headers, stdout holds rows only: zero of them is no line
            if not _RENDERING.quiet:
                stream = sys.stderr if _RENDERING.no_headers else sys.stdout
                stream.write(f"no {title or 'rows'}\n")
            return
        title = None if _RENDERING.no_headers else title
        cells = [[_cell(row.get(c)) for c in columns] for row in rows]
        if not _isatty(sys.stdout):
            text = plain_table(cells, columns, headers=not _RENDERING.no_headers)
            sys.stdout.write(f"{title}\n{text}\n" if title else f"{text}\n")
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_lines=False, show_header=not _RENDERING.no_headers)
        for col in columns:
            table.add_column(col)
        for row, line in zip(rows, cells, strict=True):
            marked = highlight is not None and highlight(row)
            table.add_row(*(Text(c) for c in line), style="bold red" if marked else None)
        Console(no_color=not colour_allowed(), highlight=False, soft_wrap=True).print(table)

    def record(self, item: Mapping[str, Any], title: str | None = None) -> None:
        """One object: key/value lines for people, a JSON object for pipelines, a one-row
        table of the chosen keys under `-o columns=`."""
        if self.json_mode:
            self.data(dict(item))
            return
        if self.format == "columns":
            self.table([item], list(item), title=title)
            return
        if self._for_people_only():
            return
        if title and not _RENDERING.no_headers:
            sys.stdout.write(f"{title}\n")
        width = max((len(k) for k in item), default=0)
        for key, value in item.items():
            sys.stdout.write(f"  {key.ljust(width)}  {'' if value is None else value}\n")

    def message(self, text: str) -> None:
        """Human progress or confirmation; in JSON mode it goes to stderr to keep stdout clean.
        `-q` hides it."""
        if _RENDERING.quiet:
            return
        stream = sys.stderr if self.json_mode else sys.stdout
        stream.write(text + "\n")

    def event(self, kind: str, **fields: object) -> None:
        """A timestamped JSON event (JSON mode) or a short line (people)."""
        if self.json_mode:
            payload = {"ts": utc_timestamp(), "event": kind, **fields}
            sys.stdout.write(self._document(payload))
            sys.stdout.flush()
        elif not _RENDERING.quiet:
            extras = " ".join(f"{k}={v}" for k, v in fields.items())
            sys.stdout.write(f"{kind} {extras}".rstrip() + "\n")
            sys.stdout.flush()


def notice(text: str) -> None:
    """A line for the person waiting (not a result, not an error): stderr, hidden by `-q`."""
    if not _RENDERING.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def error_document(code: int, kind: str, message: str, hint: str | None = None) -> None:
    """Under -o json|yaml, a failure as a document on stdout too: {"error": {"code", "kind",
    "message", "hint"?}}. Not when the command already printed its result document, whose
    rows carry the failure (a second document would break `json.loads` of stdout)."""
    if not machine_readable() or _RENDERING.wrote_document:
        return
    error: dict[str, object] = {"code": code, "kind": kind, "message": message}
    if hint:
        error["hint"] = hint
    Output(True).data({"error": error})


def error_line(message: str) -> None:
    sys.stderr.write(f"fatctl: error: {message}\n")


def exit_if_failed(failed: Sequence[str], total: int, shown: int = 10) -> None:
    """Exit 1 with `2 of 5 agents failed: a, b` when any of `total` agents failed: the one
    line a command over many agents ends with (a fleet-wide failure names the first few)."""
    if not failed:
        return
    names = ", ".join(failed[:shown])
    if len(failed) > shown:
        names += f" and {len(failed) - shown} more"
    error_line(f"{len(failed)} of {total} agents failed: {names}")
    raise typer.Exit(1)


def echo_stream(stream: str, text: str) -> None:
    """A remote command's output as it arrives: "out" to stdout, the rest to stderr."""
    out = sys.stdout if stream == "out" else sys.stderr
    out.write(text)
    out.flush()
