"""The `fatctl` entry point: builds the app for the invoked command and maps errors to exit codes.

Exit codes: 0 ok, 1 failed, 2 bad input. Every failure is one line on stderr with no secret in it;
set FATCTL_DEBUG=1 to see a traceback for an unexpected error.
"""

from __future__ import annotations

import os
import sys

from fatctl.cli.output import error_line
from fatctl.errors import FatctlError


def _unexpected(exc: BaseException) -> int:
    from fatctl.sensitive import redact

    if os.environ.get("FATCTL_DEBUG"):
        import traceback

        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    first = str(exc).splitlines()[0] if str(exc) else ""
    error_line(redact(f"internal error: {type(exc).__name__}: {first}"[:300]))
    return 1


def _once_each(message: str) -> str:
    """Drop repeated sentences: click and Typer each append the same "Did you mean ...?"."""
    seen: list[str] = []
    for sentence in message.replace("? ", "?\0").replace(". ", ".\0").split("\0"):
        if sentence.strip() and sentence.strip() not in seen:
            seen.append(sentence.strip())
    return " ".join(seen)


def _click_failure(exc: Exception) -> int | None:
    """Exit code for click's own errors (usage, abort), or None for anything else.

    Typer ships a private copy of click, so its exception classes are recognised by shape
    rather than imported.
    """
    if type(exc).__name__ == "NoArgsIsHelpError":
        sys.stderr.write(exc.format_message() + "\n")  # type: ignore[attr-defined]
        return 2
    if type(exc).__name__ == "Abort":
        error_line("aborted")
        return 1
    if callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    ):
        message = exc.format_message()  # type: ignore[attr-defined]
        error_line(_once_each(message.replace("\n", " ")))
        return int(exc.exit_code)  # type: ignore[attr-defined]
    return None


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app and exit with fatctl's exit codes."""
    from fatctl.cli.commands import build_app, invoked_command

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--version"]:  # the conventional spelling of `fatctl version`
        args = ["version", *args[1:]]
    completing = any(k.startswith("_FATCTL_COMPLETE") for k in os.environ)
    app = build_app(None if completing else invoked_command(args))
    try:
        rv = app(args=args, standalone_mode=False, prog_name="fatctl")
        code = rv if isinstance(rv, int) else 0  # non-standalone click returns Exit codes
    except FatctlError as exc:
        error_line(exc.one_line())
        code = exc.exit_code
    except KeyboardInterrupt:
        error_line("interrupted")
        code = 130
    except Exception as exc:
        known = _click_failure(exc)
        code = _unexpected(exc) if known is None else known
    finally:
        from fatctl.cli.context import reset_context

        reset_context()
    sys.stdout.flush()
    raise SystemExit(code)
