"""Where the record of API calls and SSH commands (fatctl.calllog) goes, when asked for:
`--log-file PATH` (or FATCTL_LOG_FILE) appends everything, headers included, to a file made
0600; `-v` shows the calls on stderr and `--debug` everything. Every line passes
`calllog.mask` on its way out. When none of these is given, this module is never imported and
nothing reaches the terminal.
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from fatctl.calllog import mask, mask_command
from fatctl.errors import BadInput
from fatctl.private_paths import private_file

LOG = logging.getLogger("fatctl")
LEVELS = {"verbose": logging.INFO, "debug": logging.DEBUG}


class MaskingFormatter(logging.Formatter):
    """Masks whatever reaches a line (message, arguments, a traceback); UTC timestamps."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _file_handler(log_file: str) -> logging.Handler:
    path = Path(log_file).expanduser()
    try:
        private_file(path)  # created 0600: a log of a fleet's calls is the operator's alone
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot write the log file {log_file}: {exc.strerror or exc}") from None
    handler.setFormatter(
        MaskingFormatter("%(asctime)s %(process)d %(levelname)s %(name)s %(message)s")
    )
    handler.setLevel(logging.DEBUG)
    return handler


def start(log_file: str | None, stderr: str | None, argv: Sequence[str]) -> None:
    """Attach the handlers asked for (`stderr` is "verbose", "debug" or None)."""
    handlers = [_file_handler(log_file)] if log_file else []
    if stderr is not None:
        shown = logging.StreamHandler(sys.stderr)
        shown.setFormatter(MaskingFormatter("%(name)s: %(message)s"))
        shown.setLevel(LEVELS[stderr])
        handlers.append(shown)
    for handler in handlers:
        LOG.addHandler(handler)
    LOG.setLevel(min(h.level for h in handlers))
    LOG.propagate = False  # the record is fatctl's own; an embedding program's root stays quiet
    LOG.debug("run: fatctl %s", mask_command(shlex.join(argv)))


def stop(code: int) -> None:
    """Record the exit code and detach every handler (in-process runs start clean)."""
    LOG.debug("exit %d", code)
    for handler in list(LOG.handlers):
        LOG.removeHandler(handler)
        handler.close()
    LOG.setLevel(logging.NOTSET)
    LOG.propagate = True
