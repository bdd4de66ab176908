"""The lazily built CLI: stubs carry exactly the real commands' help, and every name resolves."""

from __future__ import annotations

import pytest
import typer

from fatctl.cli.commands import COMMANDS, build_app, completion_command, invoked_command


def _short_helps(app: typer.Typer) -> dict[str, str]:
    group = typer.main.get_group(app)
    ctx = typer.Context(group)
    out = {}
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        out[name] = (cmd.help or "").strip().splitlines()[0]
    return out


def test_stub_help_matches_the_real_commands() -> None:
    stubs = _short_helps(build_app(""))
    real = _short_helps(build_app(None))
    assert set(stubs) == set(real) == set(COMMANDS)
    assert stubs == real


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_builds_alone(name: str) -> None:
    app = typer.main.get_group(build_app(name))
    ctx = typer.Context(app)
    cmd = app.get_command(ctx, name)
    assert cmd is not None
    if isinstance(cmd, typer.core.TyperGroup):  # a noun: its subcommands are real
        assert cmd.list_commands(ctx)
    else:
        assert cmd.callback is not None and cmd.callback.__name__ != "stub"


def test_invoked_command() -> None:
    assert invoked_command(["--help"]) == ""
    assert invoked_command(["agents", "list", "--json"]) == "agents"
    assert invoked_command(["nosuch"]) == ""


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"COMP_WORDS": "fatctl agents show al", "COMP_CWORD": "3"}, "agents"),
        ({"COMP_WORDS": "fatctl ag", "COMP_CWORD": "1"}, ""),  # the stubs carry every name
        ({"COMP_WORDS": "fatctl agents", "COMP_CWORD": "1"}, "agents"),
        ({"_TYPER_COMPLETE_ARGS": "fatctl rollout show "}, "rollout"),
        ({"_TYPER_COMPLETE_ARGS": "fatctl --json 'unclosed"}, ""),
        ({}, None),  # no words to read: build every command
    ],
)
def test_completion_builds_only_the_command_being_completed(
    environ: dict[str, str], expected: str | None
) -> None:
    assert completion_command(environ) == expected
