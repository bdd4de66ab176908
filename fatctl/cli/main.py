"""The `fatctl` entry point: builds the app for the invoked command and maps errors to exit codes.

Exit codes: 0 ok, 1 failed, 2 bad input. Every failure is one line on stderr with no secret in it
(and, under -o json|yaml, an {"error": ...} document on stdout); `--debug` or FATCTL_DEBUG=1
shows a traceback for an unexpected error. The global flags (fatctl.cli.global_flags) are taken
off the command line first and put into effect here.
"""

from __future__ import annotations

import os
import sys

from fatctl.cli.global_flags import GlobalFlags, completion_words, split_global_flags
from fatctl.cli.output import Rendering, configure, error_document, error_line
from fatctl.errors import FatctlError


def _fail(code: int, kind: str, line: str, hint: str | None = None) -> int:
    """The one stderr line, and the same failure as a document under -o json|yaml."""
    error_line(f"{line} ({hint})" if hint else line)
    error_document(code, kind, line, hint)
    return code


def _unexpected(exc: BaseException, debug: bool) -> int:
    from fatctl.sensitive import redact

    if debug or os.environ.get("FATCTL_DEBUG"):
        import traceback

        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    first = str(exc).splitlines()[0] if str(exc) else ""
    return _fail(1, "internal", redact(f"internal error: {type(exc).__name__}: {first}"[:300]))


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
        error_document(2, "usage", "a subcommand is needed (its list is on stderr)")
        return 2
    if type(exc).__name__ == "Abort":
        return _fail(1, "aborted", "aborted")
    if callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    ):
        message = _once_each(exc.format_message().replace("\n", " "))  # type: ignore[attr-defined]
        return _fail(int(exc.exit_code), "usage", message)  # type: ignore[attr-defined]
    return None


def _apply(flags: GlobalFlags, args: list[str]) -> bool:
    """Put the global flags into effect; True when logging was started (and must be stopped)."""
    if flags.context is not None:
        os.environ["FATCTL_CONTEXT"] = flags.context  # read by the settings, like the variable
    configure(Rendering(flags.output, flags.columns, flags.no_headers, flags.quiet))
    log_file = flags.log_file or os.environ.get("FATCTL_LOG_FILE") or None
    stderr = "debug" if flags.debug else "verbose" if flags.verbose else None
    if log_file is None and stderr is None:
        return False  # logging is not even imported: nothing can reach the terminal
    from fatctl.cli import logsetup

    logsetup.start(log_file, stderr, args)
    return True


def _restore(flags: GlobalFlags, saved_context: str | None, logging_on: bool, code: int) -> None:
    """Undo this invocation's process-wide state (tests run many invocations in one process)."""
    from fatctl.cli.context import reset_context

    reset_context()
    configure()
    if logging_on:
        from fatctl.cli import logsetup

        logsetup.stop(code)
    if flags.context is not None:
        if saved_context is None:
            os.environ.pop("FATCTL_CONTEXT", None)
        else:
            os.environ["FATCTL_CONTEXT"] = saved_context


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app and exit with fatctl's exit codes."""
    from fatctl.cli.commands import build_app, completion_command, invoked_command

    args = sys.argv[1:] if argv is None else argv
    flags, logging_on, code = GlobalFlags(), False, 1
    saved_context = os.environ.get("FATCTL_CONTEXT")
    try:
        completing = any(k.startswith("_FATCTL_COMPLETE") for k in os.environ)
        if completing:  # the flags are in the shell's words, not in argv
            flags, words = completion_words(os.environ)
            os.environ.update(words)
        else:
            flags, args = split_global_flags(args)
        logging_on = _apply(flags, args)
        app = build_app(completion_command(os.environ) if completing else invoked_command(args))
        rv = app(args=args, standalone_mode=False, prog_name="fatctl")
        code = rv if isinstance(rv, int) else 0  # non-standalone click returns Exit codes
    except FatctlError as exc:
        code = _fail(exc.exit_code, exc.kind, exc.message.replace("\n", " ").strip(), exc.hint)
    except KeyboardInterrupt:
        code = _fail(130, "interrupted", "interrupted")
    except Exception as exc:
        known = _click_failure(exc)
        code = _unexpected(exc, flags.debug) if known is None else known
    finally:
        sys.stdout.flush()
        _restore(flags, saved_context, logging_on, code)
    raise SystemExit(code)
