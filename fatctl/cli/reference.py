"""The command reference, generated from the Typer app itself: `docs/cli.md` and the man page
`docs/man/fatctl.1`. A test regenerates both and fails when the checked-in files differ, so the
reference cannot drift from the commands.

    python3 -m fatctl.cli.reference        # rewrite both files

The walk (`commands`) reads click's own objects; the two renderers are pure text functions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click
import typer

ROOT = Path(__file__).resolve().parents[2]
MARKDOWN = ROOT / "docs" / "cli.md"
MAN_PAGE = ROOT / "docs" / "man" / "fatctl.1"


@dataclass(frozen=True)
class Param:
    names: str  # "--owner EMAIL" or "AGENT"
    help: str
    default: str = ""


@dataclass(frozen=True)
class Command:
    path: str  # "fatctl keys add"
    usage: str
    help: str
    params: tuple[Param, ...]
    epilog: str = ""  # the root's: the global flags, kept as written (click's \b paragraph)


def _param(param: click.Parameter, ctx: click.Context) -> Param | None:
    if getattr(param, "hidden", False):
        return None
    record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
    if record is not None:
        names, text = record
        return Param(names, " ".join(text.split()))
    if isinstance(param, click.Argument):
        text = getattr(param, "help", "") or ""
        return Param(param.make_metavar(ctx) if _takes_ctx() else param.human_readable_name,
                     " ".join(text.split()))  # fmt: skip
    return None


def _takes_ctx() -> bool:
    """click 8.2 made `make_metavar` take the context; older versions take none."""
    import inspect

    return "ctx" in inspect.signature(click.Argument.make_metavar).parameters


def commands(app: typer.Typer | None = None) -> list[Command]:
    """Every command of the app, depth first, as click sees it (groups included)."""
    from fatctl.cli.commands import build_app

    root = typer.main.get_command(app or build_app(None))
    found: list[Command] = []

    def walk(command: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(command, info_name=path[-1], parent=parent)
        params = tuple(p for p in (_param(x, ctx) for x in command.get_params(ctx)) if p)
        usage = " ".join(command.collect_usage_pieces(ctx))
        found.append(Command(" ".join(path), f"{' '.join(path)} {usage}".strip(),
                             (command.help or "").strip(), params,
                             (command.epilog or "").replace("\b", "").strip()))  # fmt: skip
        if isinstance(command, click.Group):
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], ctx)

    walk(root, ["fatctl"], None)
    return found


def markdown(found: list[Command]) -> str:
    """docs/cli.md: one section per command, its usage, help and options."""
    out = ["# fatctl command reference", "",
           "Generated from the CLI by `python3 -m fatctl.cli.reference`; do not edit by hand.",
           ""]  # fmt: skip
    for command in found:
        out += [f"## `{command.path}`", "", "```", command.usage, "```", ""]
        if command.help:
            out += [command.help, ""]
        rows = [p for p in command.params if p.names != "--help"]
        if rows:
            out += ["| option | meaning |", "|---|---|"]
            out += [f"| `{_cell(p.names)}` | {_cell(p.help)} |" for p in rows]
            out.append("")
        if command.epilog:
            out += ["```", command.epilog, "```", ""]
    return "\n".join(out).rstrip() + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _roff(text: str) -> str:
    """Text safe in a man page: backslashes and leading dots or quotes escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)  # e.g. em dashes
    return "\n".join(("\\&" + ln) if ln[:1] in (".", "'") else ln for ln in text.splitlines())


def man_page(found: list[Command], version: str) -> str:
    """docs/man/fatctl.1: the same content as roff (man 7 man), one page for the whole CLI."""
    root = found[0]
    out = [f'.TH FATCTL 1 "" "fatctl {version}" "fatctl manual"', ".SH NAME",
           "fatctl \\- " + _roff(root.help.splitlines()[0] if root.help else "fatctl"),
           ".SH SYNOPSIS", ".B fatctl", ".I COMMAND", "[\\fIOPTIONS\\fR]",
           ".SH COMMANDS"]  # fmt: skip
    if root.epilog:
        out[-1:-1] = [".SH GLOBAL FLAGS", ".nf", _roff(root.epilog), ".fi"]
    for command in found[1:]:
        out += [".SS " + _roff(command.path), ".B " + _roff(command.usage)]
        if command.help:
            out += [".PP", _roff(command.help)]
        for p in command.params:
            if p.names != "--help":
                out += [".TP", ".B " + _roff(p.names), _roff(p.help or "")]
    out += [".SH SEE ALSO", "docs/cli.md, docs/exit\\-codes.md, docs/security.md"]
    return "\n".join(out) + "\n"


def rendered() -> dict[Path, str]:
    from fatctl.cli.version_cmd import installed

    found = commands()
    return {MARKDOWN: markdown(found), MAN_PAGE: man_page(found, installed("fatctl"))}


def main() -> None:
    for path, text in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
