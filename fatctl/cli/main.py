"""The `fatctl` entry point: assembles one Typer sub-app per noun and maps errors to exit codes.

Exit codes: 0 ok, 1 failed, 2 bad input. Every failure is one line on stderr with no secret in it;
set FATCTL_DEBUG=1 to see a traceback for an unexpected error.
"""

from __future__ import annotations

import os
import sys

import typer

from fatctl.cli import agents, audit, config_cmd, db, keys, placeholders, render, secrets_cmd
from fatctl.cli.output import error_line
from fatctl.errors import FatctlError

app = typer.Typer(
    name="fatctl",
    help="Control plane for the fleet of dedicated OpenClaw agent boxes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(agents.app, name="agents")
app.add_typer(keys.app, name="keys")
app.add_typer(secrets_cmd.app, name="secrets")
app.add_typer(config_cmd.app, name="config")
app.add_typer(db.app, name="db")
app.command("audit")(audit.audit)
app.command("render")(render.render)
placeholders.register(app)


def _unexpected(exc: BaseException) -> int:
    from fatctl.sensitive import redact

    if os.environ.get("FATCTL_DEBUG"):
        import traceback

        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    first = str(exc).splitlines()[0] if str(exc) else ""
    error_line(redact(f"internal error: {type(exc).__name__}: {first}"[:300]))
    return 1


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app and exit with fatctl's exit codes."""
    import click

    try:
        app(args=argv, standalone_mode=False, prog_name="fatctl")
        code = 0
    except FatctlError as exc:
        error_line(exc.one_line())
        code = exc.exit_code
    except click.exceptions.UsageError as exc:
        error_line(exc.format_message().replace("\n", " "))
        code = 2
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        error_line("aborted")
        code = 1
    except KeyboardInterrupt:
        error_line("interrupted")
        code = 130
    except Exception as exc:
        code = _unexpected(exc)
    finally:
        from fatctl.cli.context import reset_context

        reset_context()
    sys.stdout.flush()
    raise SystemExit(code)
