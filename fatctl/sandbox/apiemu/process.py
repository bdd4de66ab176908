"""Shared `python -m` entry for the emulators: parse the common flags, start the emulator,
write `<state-dir>/<name>.endpoint.json` (mode 0600: it holds the API token, which is never
printed), print one line with the URL, and serve until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def common_parser(prog: str, default_rate: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-limit", type=int, default=default_rate)
    parser.add_argument("--token", default=None, help="default: generated once per state dir")
    parser.add_argument("--faults", default=None, help='JSON knobs, e.g. {"error_rate": 0.2}')
    return parser


def bad_input(message: str) -> SystemExit:
    """One line on stderr and exit status 2, the house rule for bad input."""
    print(f"error: {message}", file=sys.stderr)
    return SystemExit(2)


def parse_faults(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise bad_input("--faults is not valid JSON") from None
    if not isinstance(value, dict):
        raise bad_input("--faults must be a JSON object")
    return value


def write_endpoint(state_dir: Path, name: str, info: dict[str, Any]) -> Path:
    path = state_dir / f"{name}.endpoint.json"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({**info, "pid": os.getpid()}, out)
    os.replace(tmp, path)
    return path


def serve(
    name: str, start: Callable[[], Any], info: Callable[[Any], dict[str, Any]], state_dir: Path
) -> int:
    try:
        handle = start()
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    details = info(handle)
    path = write_endpoint(state_dir, name, details)
    print(json.dumps({"name": name, "url": details["url"], "endpoint_file": str(path)}), flush=True)
    stop.wait()
    handle.stop()
    path.unlink(missing_ok=True)
    return 0
