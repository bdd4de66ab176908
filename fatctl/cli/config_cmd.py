"""`fatctl config show`: the resolved configuration, secrets shown only as set/unset."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

if TYPE_CHECKING:
    from fatctl.config import Settings

app = typer.Typer(
    help="Configuration (environment variables and fatctl.toml).", no_args_is_help=True
)


@app.command("show")
def show(json_out: JsonOpt = False) -> None:
    """Show every setting and where to set it; secret values are never printed."""
    show_settings(ctx().settings, json_out, "configuration")


def show_settings(settings: Settings, json_out: bool, title: str) -> None:
    """Settings as `config show` prints them: secrets only as set/unset, the database URL
    without its password (`fatctl context show` prints a context's the same way)."""
    from fatctl.config import SETTINGS
    from fatctl.state.rawdb import redacted_url

    view = settings.public_view()
    view["database_url"] = redacted_url(view["database_url"])
    if json_out:
        Output(True).data(view)
        return
    env_of = {s.attr: s.env for s in SETTINGS} | {"context": "FATCTL_CONTEXT"}
    rows = [{"setting": k, "value": v, "env": env_of.get(k, "")} for k, v in view.items()]
    Output(False).table(rows, ("setting", "value", "env"), title=title)
