"""fatctl's global flags, taken off the command line before click sees it.

Like kubectl's and hcloud's, they may stand anywhere on the line: `fatctl -o json agents list`
and `fatctl agents list -o json` mean the same. Click knows an option only where it is declared,
so `split_global_flags` takes these flags out of argv up to a `--` (what follows belongs to a
remote command and is never touched) and hands the rest to click unchanged. `--json`, which
every data command declares, stays for click and is read here as `-o json`.

Pure: no environment and no I/O. `fatctl.cli.main` applies the result (output settings, logging,
FATCTL_CONTEXT for `--context`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fatctl.errors import BadInput

FORMATS = ("table", "json", "yaml")
MACHINE_FORMATS = ("json", "yaml")
_FORMATS_HINT = "table, json, yaml or columns=NAME,NAME"
_VALUED = {"-o": "output", "--output": "output", "--log-file": "log_file", "--context": "context"}
_NEEDS = {"output": f"a format: {_FORMATS_HINT}", "log_file": "a PATH", "context": "a NAME"}
_SWITCHES = {"-q": "quiet", "--quiet": "quiet", "-v": "verbose", "--verbose": "verbose",
             "--debug": "debug", "--no-headers": "no_headers"}  # fmt: skip
_SHORT = {"o", "q", "v"}  # may be bundled with click's own short flags: -qy, -yojson

# Shown under `fatctl --help` (click keeps a paragraph starting with \b as written).
HELP = """\b
Global flags (anywhere on the line before --):
  -o, --output FORMAT  table, json, yaml or columns=NAME,... (--json is -o json)
  --no-headers         tables without their header lines
  -q, --quiet          nothing but errors (and what -o or --json asked for)
  -v, --verbose        API calls and SSH commands on stderr, secrets masked
  --debug              more than -v, and a traceback for an internal error
  --log-file PATH      append that record to PATH (also FATCTL_LOG_FILE)
  --context NAME       use the named context (also FATCTL_CONTEXT)"""


@dataclass(frozen=True)
class GlobalFlags:
    """What the global flags asked for; the defaults are what no flag means."""

    output: str = "table"  # table | json | yaml | columns
    columns: tuple[str, ...] = ()
    output_given: bool = False  # -o or --json was on the line
    no_headers: bool = False
    quiet: bool = False
    verbose: bool = False
    debug: bool = False
    log_file: str | None = None
    context: str | None = None

    @property
    def machine(self) -> bool:
        return self.output in MACHINE_FORMATS


def parse_output(value: str) -> tuple[str, tuple[str, ...]]:
    """`-o VALUE` as (format, columns); anything else is bad input naming the valid ones."""
    if value in FORMATS:
        return value, ()
    if value.startswith("columns="):
        names = tuple(name.strip() for name in value.removeprefix("columns=").split(","))
        if all(names):
            return "columns", names
        raise BadInput(f"-o columns= needs column names separated by commas, not {value!r}")
    raise BadInput(f"unknown output format {value[:40]!r}: use {_FORMATS_HINT}")


def _bundle(arg: str) -> list[tuple[str, str | None]] | None:
    """`-qy` or `-ojson` as [(flag, inline value)]: None unless it bundles one of ours."""
    letters = arg[1:]
    if not arg.startswith("-") or arg.startswith("--") or len(letters) < 2:
        return None
    if letters[0] == "o":  # -ojson, -ocolumns=a,b: the value is the rest of the word
        return [("-o", letters[1:])]
    if not letters.isalpha() or not _SHORT & set(letters):
        return None
    parts: list[tuple[str, str | None]] = []
    for i, letter in enumerate(letters):
        if letter == "o":
            return [*parts, ("-o", letters[i + 1 :] or None)]
        parts.append((f"-{letter}", None))
    return parts


def _words(arg: str) -> list[tuple[str, str | None]]:
    """One argument as flags with their inline values (`--output=json`, `-qy`, `-ojson`)."""
    name, eq, value = arg.partition("=")
    if eq and name in _VALUED:
        return [(name, value)]
    return _bundle(arg) or [(arg, None)]


def _value(flag: str, inline: str | None, args: Sequence[str], i: int) -> tuple[str, int]:
    """The value of a flag that takes one, inline or the next argument, and the next index."""
    if inline is not None:
        value, i = inline, i + 1
    elif i + 1 < len(args) and args[i + 1] != "--":
        value, i = args[i + 1], i + 2
    else:
        value = ""
    if not value or value.startswith("-"):
        raise BadInput(f"{flag} needs {_NEEDS[_VALUED[flag]]}")
    return value, i


def split_global_flags(argv: Sequence[str]) -> tuple[GlobalFlags, list[str]]:
    """The global flags on `argv`, and argv without them (`--version` becomes `version`)."""
    found: dict[str, Any] = {}
    rest: list[str] = []
    args, i = list(argv), 0
    while i < len(args):
        if args[i] == "--":
            rest += args[i:]
            break
        kept: list[str] = []
        step = i + 1
        for flag, inline in _words(args[i]):
            if flag in _VALUED:
                value, step = _value(flag, inline, args, i)
                found.update(_valued(_VALUED[flag], value))
            elif flag in _SWITCHES:
                found[_SWITCHES[flag]] = True
            else:  # click's: a bundle's other letters stay bundled (-qy -> -y)
                kept.append(flag[1:] if kept and len(flag) == 2 else flag)
        if kept:
            rest.append("".join(kept))
        i = step
    flags = _checked(GlobalFlags(**found), "--json" in rest[: _end(rest)])
    if rest[:1] == ["--version"]:  # the conventional spelling of `fatctl version`
        rest = ["version", *rest[1:]]
    return flags, rest


def _end(rest: list[str]) -> int:
    return rest.index("--") if "--" in rest else len(rest)


def _valued(field: str, value: str) -> dict[str, Any]:
    if field == "output":  # the last -o wins, as with any repeated click option
        output, columns = parse_output(value)
        return {"output": output, "columns": columns, "output_given": True}
    return {field: value}


def _checked(flags: GlobalFlags, json_flag: bool) -> GlobalFlags:
    """--json folded into -o, and the combinations that cannot both be meant refused."""
    if json_flag and flags.output_given and flags.output != "json":
        shown = "columns=..." if flags.output == "columns" else flags.output
        raise BadInput(f"--json is -o json: it conflicts with -o {shown}")
    if flags.quiet and (flags.verbose or flags.debug):
        raise BadInput("-q/--quiet conflicts with -v/--verbose and --debug: choose one")
    if json_flag:
        flags = replace(flags, output="json", output_given=True)
    return flags


def completion_words(environ: Mapping[str, str]) -> tuple[GlobalFlags, dict[str, str]]:
    """The global flags among the words a shell passes for completion, and the variables to
    set so that click sees the words without them (`fatctl --context prod status a<TAB>`
    completes `status` in context prod). bash passes COMP_WORDS and the index COMP_CWORD of
    the word being typed; zsh, fish and PowerShell pass _TYPER_COMPLETE_ARGS, whose last word
    is the one being typed unless it ends in a space. Unparseable words are left as they are.
    """
    from click.shell_completion import split_arg_string

    if "COMP_WORDS" in environ:
        words = split_arg_string(environ["COMP_WORDS"])
        cword = int(environ.get("COMP_CWORD", len(words)))
        done, typing = words[1:cword], words[cword:]
    elif "_TYPER_COMPLETE_ARGS" in environ:
        line = environ["_TYPER_COMPLETE_ARGS"]
        words = split_arg_string(line)
        ends_typed = line.endswith(" ") or not words[1:]
        done, typing = (words[1:], []) if ends_typed else (words[1:-1], words[-1:])
    else:
        return GlobalFlags(), {}
    try:
        flags, rest = split_global_flags(done)
    except BadInput:
        return GlobalFlags(), {}
    joined = " ".join(shlex.quote(w) for w in [words[0] if words else "fatctl", *rest, *typing])
    if "COMP_WORDS" in environ:
        return flags, {"COMP_WORDS": joined, "COMP_CWORD": str(1 + len(rest))}
    return flags, {"_TYPER_COMPLETE_ARGS": joined + (" " if not typing else "")}
