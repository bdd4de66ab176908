"""The output helper and confirmation when nobody is at a terminal: plain tables, colour rules,
CI flags, timestamps, and `confirm` refusing instead of asking."""

from __future__ import annotations

import io
import json
from datetime import datetime

import pytest

from fatctl.cli import output
from fatctl.cli.context import confirm
from fatctl.cli.output import (
    Output,
    colour_allowed,
    in_ci,
    is_interactive,
    plain_table,
    progress_allowed,
)
from fatctl.errors import BadInput


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_table_is_aligned_text() -> None:
    text = plain_table([["alpha", "0"], ["a-much-longer-name", "12"]], ["agent", "n"])
    assert text.splitlines() == [
        "agent               n",
        "------------------  --",
        "alpha               0",
        "a-much-longer-name  12",
    ]


def test_table_to_a_pipe_is_plain_and_to_a_terminal_is_drawn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [{"agent": "a", "note": "REPLACES LIVE BOX: [bold]x[/bold]"}, {"agent": "b"}]
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stdout", pipe)
    Output(False).table(rows, ("agent", "note"), title="t", highlight=lambda r: "note" in r)
    assert pipe.getvalue().splitlines()[0] == "t"
    assert "[bold]x[/bold]" in pipe.getvalue() and "\x1b" not in pipe.getvalue()

    tty = Tty()
    monkeypatch.setattr("sys.stdout", tty)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CI", raising=False)
    Output(False).table(rows, ("agent", "note"), title="t", highlight=lambda r: "note" in r)
    drawn = tty.getvalue()
    assert "│" in drawn or "┃" in drawn  # rich draws for people
    assert "[bold]x[/bold]" in drawn  # cell text is never read as markup


def test_colour_needs_a_terminal_and_no_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert colour_allowed(Tty()) and not colour_allowed(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "")  # present, even empty, means no colour
    assert not colour_allowed(Tty())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("CI", "true")
    assert not colour_allowed(Tty())


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("", False)],
)
def test_ci_flag_values(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_json_events_carry_a_utc_timestamp(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Output(True).event("agent.done", agent="a", phase="succeeded")
    event = json.loads(capsys.readouterr().out)
    assert list(event)[:2] == ["ts", "event"] and event["event"] == "agent.done"
    stamp = datetime.fromisoformat(event["ts"])
    offset = stamp.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    assert event["ts"].endswith("+00:00") and "." in event["ts"]


def test_confirm_never_asks_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # a pipe that would say yes
    with pytest.raises(BadInput, match=r"^resize a: refusing without --yes \(no terminal"):
        confirm("resize a?", False)
    confirm("resize a?", True)  # --yes: no question at all


def test_confirm_never_asks_in_ci_even_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", Tty())
    monkeypatch.setattr("sys.stdout", Tty())
    monkeypatch.setenv("CI", "true")
    assert not is_interactive()
    with pytest.raises(BadInput, match=r"\(CI is set\)"):
        confirm("apply?", False)
    monkeypatch.setenv("CI", "false")
    assert output.is_interactive()  # CI=false is a person


def test_progress_only_for_a_person(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert progress_allowed(Tty()) and not progress_allowed(io.StringIO())
    monkeypatch.setenv("TERM", "dumb")
    assert not progress_allowed(Tty())
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("CI", "true")
    assert not progress_allowed(Tty())
