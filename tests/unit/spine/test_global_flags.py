"""The global flags taken off the command line (anywhere before `--`): where they may stand,
what they mean, and the bad ones refused as one line."""

from __future__ import annotations

import pytest

from fatctl.cli.global_flags import GlobalFlags, split_global_flags
from fatctl.errors import BadInput


@pytest.mark.parametrize(
    ("argv", "output", "columns", "rest"),
    [
        (["agents", "list", "-o", "json"], "json", (), ["agents", "list"]),
        (["-o", "yaml", "agents", "list"], "yaml", (), ["agents", "list"]),
        (["agents", "list", "-oyaml"], "yaml", (), ["agents", "list"]),
        (["agents", "list", "--output=json"], "json", (), ["agents", "list"]),
        (["agents", "list", "-o=json"], "json", (), ["agents", "list"]),
        (["agents", "list", "-o", "columns=name,ipv4"], "columns", ("name", "ipv4"),
         ["agents", "list"]),
        (["agents", "list", "-ocolumns=name"], "columns", ("name",), ["agents", "list"]),
        (["agents", "list", "--json"], "json", (), ["agents", "list", "--json"]),
        (["agents", "list", "-o", "json", "--json"], "json", (), ["agents", "list", "--json"]),
        (["agents", "list", "-o", "yaml", "-o", "table"], "table", (), ["agents", "list"]),
        (["provision", "o", "--owner", "a@b.c"], "table", (), ["provision", "o", "--owner",
                                                              "a@b.c"]),
    ],
)  # fmt: skip
def test_output_anywhere_on_the_line(
    argv: list[str], output: str, columns: tuple[str, ...], rest: list[str]
) -> None:
    flags, left = split_global_flags(argv)
    assert (flags.output, flags.columns, left) == (output, columns, rest)
    assert flags.output_given == (output != "table" or "-o" in argv)


def test_switches_values_and_bundles() -> None:
    flags, rest = split_global_flags(
        ["-qy", "destroy", "alpha", "--no-headers", "--log-file", "/tmp/x", "--context=prod"]
    )
    assert rest == ["-y", "destroy", "alpha"]
    assert flags == GlobalFlags(quiet=True, no_headers=True, log_file="/tmp/x", context="prod")
    flags, rest = split_global_flags(["-v", "--debug", "status", "-yojson"])
    assert (flags.verbose, flags.debug, flags.output) == (True, True, "json")
    assert rest == ["status", "-y"]
    assert split_global_flags(["--version", "-q"]) == (GlobalFlags(quiet=True), ["version"])


def test_nothing_after_double_dash_is_touched() -> None:
    argv = ["exec", "--all", "--", "grep", "-q", "-v", "-o", "json", "--json", "--context", "x"]
    assert split_global_flags(argv) == (GlobalFlags(), argv)
    flags, rest = split_global_flags(["ssh", "a", "-o", "yaml", "--", "ls", "-o"])
    assert (flags.output, rest) == ("yaml", ["ssh", "a", "--", "ls", "-o"])


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-o"], "-o needs a format: table, json, yaml or columns="),
        (["-o", "--", "x"], "-o needs a format"),
        (["-o", "--json"], "-o needs a format"),
        (["-o", "xml"], "unknown output format 'xml': use table, json, yaml or columns="),
        (["-o", "columns="], "-o columns= needs column names"),
        (["-o", "columns=a,,b"], "-o columns= needs column names"),
        (["a", "--json", "-o", "yaml"], "--json is -o json: it conflicts with -o yaml"),
        (["a", "--json", "-o", "columns=x"], "it conflicts with -o columns="),
        (["-q", "-v"], "-q/--quiet conflicts with -v/--verbose and --debug"),
        (["--context"], "--context needs a NAME"),
        (["--log-file="], "--log-file needs a PATH"),
    ],
)
def test_bad_global_flags_are_bad_input(argv: list[str], needle: str) -> None:
    with pytest.raises(BadInput) as err:
        split_global_flags(argv)
    assert needle in err.value.one_line() and "\n" not in err.value.one_line()
