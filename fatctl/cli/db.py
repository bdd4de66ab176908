"""`fatctl db upgrade|downgrade|current|check`: schema migrations of the state database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from fatctl.cli.context import confirm, ctx
from fatctl.cli.options import JsonOpt, YesOpt
from fatctl.cli.output import Output

app = typer.Typer(help="The state database's schema.", no_args_is_help=True)


def _revision(value: str) -> str:
    """head, base, a revision id (0003) or a relative step (+1, -2): anything else is refused."""
    import re

    from fatctl.errors import BadInput

    if not re.fullmatch(r"head|base|[0-9a-f]{4,32}|[+-][0-9]{1,3}", value):
        raise BadInput(f"--to {value[:40]!r} is not a revision: use head, base, +N, -N or an id")
    return value


def _migrating(step: Callable[[], None]) -> None:
    """Run a migration; Alembic's "no such revision" becomes one bad-input line."""
    from alembic.util.exc import CommandError

    from fatctl.errors import BadInput

    try:
        step()
    except CommandError as exc:
        raise BadInput(str(exc).splitlines()[0][:200]) from None


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option("--to", help="Target revision.")] = "head",
    json_out: JsonOpt = False,
) -> None:
    """Migrate the database to the newest schema (creates the SQLite file if needed)."""
    from fatctl.state import migrate
    from fatctl.state.db import current_revision

    url = ctx().settings.database_url
    _migrating(lambda: migrate.upgrade(url, _revision(revision)))
    rev = current_revision(url)
    Output(json_out).record({"revision": rev}, title="database upgraded")


@app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Option("--to", help="Target revision (base = empty).")] = "base",
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Migrate down (destroys data of the dropped tables)."""
    from fatctl.state import migrate

    revision = _revision(revision)
    confirm(f"Downgrade the database to {revision}? Data in dropped tables is lost", yes)
    _migrating(lambda: migrate.downgrade(ctx().settings.database_url, revision))
    Output(json_out).record({"revision": revision}, title="database downgraded")


@app.command("current")
def current(json_out: JsonOpt = False) -> None:
    """Show the schema revision of the database and the one this fatctl needs."""
    from fatctl.state.db import HEAD_REVISION, current_revision

    rev = current_revision(ctx().settings.database_url)
    Output(json_out).record({"revision": rev or "(none)", "required": HEAD_REVISION})


@app.command("check")
def check(json_out: JsonOpt = False) -> None:
    """Fail when the models and the migrations disagree."""
    from fatctl.state import migrate

    migrate.check(ctx().settings.database_url)
    Output(json_out).record({"models_match_migrations": True}, title="database check")
