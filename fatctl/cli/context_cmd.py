"""`fatctl context list|use|show`: the named contexts of fatctl.toml (fatctl.contexts), which
one commands use, and what it resolves to (secrets only as set/unset).

`list` and `use` read the contexts without resolving the one in use, so they still work when
the recorded one has since been removed from fatctl.toml: they are how that is fixed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.completion import context_names
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

app = typer.Typer(
    help="Named contexts: which fleet (endpoints, tokens, database, domain) commands act on.",
    no_args_is_help=True,
)

LIST_COLUMNS = ("current", "name", "domain", "database", "data_dir")


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """The contexts fatctl.toml defines; `*` marks the one commands use."""
    from fatctl.config import context_names as defined
    from fatctl.config import load_settings
    from fatctl.state.rawdb import redacted_url

    names, current, source = defined()
    rows = []
    for name in names:
        settings = load_settings(context=name)
        rows.append({"current": "*" if name == current else "", "name": name,
                     "domain": settings.domain, "database": redacted_url(settings.database_url),
                     "data_dir": str(settings.data_dir)})  # fmt: skip
    out = Output(json_out)
    out.table(rows, LIST_COLUMNS, title="contexts",
              json_payload=[dict(r, current=r["current"] == "*") for r in rows])  # fmt: skip
    if not names:
        out.message(f"{source} defines no [contexts.NAME] tables: commands use its top level")


@app.command("use")
def use(
    name: Annotated[str, typer.Argument(help="A context fatctl.toml defines.",
                                        autocompletion=context_names)],
    json_out: JsonOpt = False,
) -> None:  # fmt: skip
    """Make NAME the context commands use (FATCTL_CONTEXT and --context still win)."""
    from fatctl.config import known_context
    from fatctl.contexts import record

    path = record(known_context(name, "fatctl context use"), name)
    Output(json_out).record({"context": name, "recorded_in": str(path)},
                            title=f"now using context {name}")  # fmt: skip


@app.command("show")
def show(
    name: Annotated[str | None, typer.Argument(help="A context (default: the one in use).",
                                               autocompletion=context_names)] = None,
    json_out: JsonOpt = False,
) -> None:  # fmt: skip
    """Every setting of a context as commands would see it; tokens are never printed."""
    from fatctl.cli.config_cmd import show_settings
    from fatctl.cli.context import ctx
    from fatctl.config import known_context, load_settings

    if name is not None:
        known_context(name, "fatctl context show")
    settings = ctx().settings if name is None else load_settings(context=name)
    show_settings(settings, json_out, f"context {settings.context or '(none: top level)'}")
