"""docs/operations.md names only commands and options that exist: every `fatctl ...` span in
it is walked through the real click command tree (sub-commands and their options)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer

from fatctl.cli.commands import build_app

DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def spans() -> list[str]:
    text = DOC.read_text()
    return sorted({" ".join(m.split()) for m in re.findall(r"`(fatctl [^`]*)`", text)})


def unknown_parts(root: click.Command, span: str) -> list[str]:
    """The sub-commands and options of `span` the CLI does not have."""
    words = span.split()[1:]
    if "--" in words:
        words = words[: words.index("--")]  # a remote command follows
    cmd, bad = root, []
    for word in words:
        if word.startswith("[") and word.endswith("]"):
            word = word[1:-1]  # an optional flag, as in `reconcile [--fix]`
        if word.startswith("-"):
            names = {o for p in cmd.params for o in getattr(p, "opts", [])}
            if word.split("=")[0] not in names:
                bad.append(f"{cmd.name} {word}")
        elif isinstance(cmd, click.Group) and word in cmd.commands:
            cmd = cmd.commands[word]
        elif isinstance(cmd, click.Group):
            return [*bad, word if cmd is root else f"{cmd.name} {word}"]  # no such sub-command
        # else: an argument (AGENT, a type name, a version)
    return bad


def test_the_doc_quotes_commands() -> None:
    assert len(spans()) > 25
    assert "fatctl reconcile --fix" in spans()


@pytest.fixture(scope="module")
def root() -> click.Command:
    return typer.main.get_command(build_app(None))


@pytest.mark.parametrize("span", spans())
def test_every_quoted_command_exists(root: click.Command, span: str) -> None:
    assert unknown_parts(root, span) == [], span


def test_the_walker_can_fail(root: click.Command) -> None:
    assert unknown_parts(root, "fatctl reconcile --repair") == ["reconcile --repair"]
    assert unknown_parts(root, "fatctl box explode AGENT") == ["box explode"]
    assert unknown_parts(root, "fatctl teleport AGENT") == ["teleport"]
