"""Bounded-concurrency fan-out of one command to many targets, with per-host results.

A host that cannot be reached becomes a result with an `error`, never an exception, so one dead
box neither stalls nor aborts the others; each worker is bounded by the connect timeout and the
command timeout. Output is streamed line by line with the agent's name as prefix.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from fatctl.errors import FatctlError
from fatctl.remote.runner import Pool, Result
from fatctl.remote.target import Target

PrefixFn = Callable[[Target, str, str], None]


def prefix_printer(width: int = 0) -> PrefixFn:
    """A thread-safe line printer: `name | line` on stdout, `name ! line` for stderr."""
    lock = threading.Lock()

    def emit(target: Target, stream: str, line: str) -> None:
        mark = "|" if stream == "out" else "!"
        with lock:
            sys.stdout.write(f"{target.name.ljust(width)} {mark} {line}\n")
            sys.stdout.flush()

    return emit


def run_one(
    pool: Pool,
    target: Target,
    command: str,
    *,
    stdin: bytes | None = None,
    timeout: float | None = None,
    on_line: PrefixFn | None = None,
) -> Result:
    """Run on one target through the pool; any failure becomes the result's `error`."""
    start = time.monotonic()
    callback = None if on_line is None else (lambda s, line: on_line(target, s, line))
    try:
        conn = pool.get(target)
        return conn.run(command, stdin=stdin, timeout=timeout, on_output=callback)
    except FatctlError as exc:
        pool.drop(target)
        return Result(
            target.name, target.host, None, "", "", time.monotonic() - start, exc.one_line()
        )


def fan_out(
    targets: Sequence[Target],
    command: str | Callable[[Target], str],
    *,
    parallel: int = 10,
    pool: Pool | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
    on_line: PrefixFn | None = None,
) -> list[Result]:
    """Run `command` (or `command(target)`) on every target; results come back in input order."""
    own_pool = pool is None
    active = pool or Pool()
    workers = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets) or 1)))
    try:
        futures = [
            workers.submit(
                run_one,
                active,
                t,
                command(t) if callable(command) else command,
                stdin=stdin,
                timeout=timeout,
                on_line=on_line,
            )
            for t in targets
        ]
        return [f.result() for f in futures]
    except KeyboardInterrupt:
        # Ctrl-C: start nothing new and close every connection, so running workers fail
        # fast instead of holding the operator's terminal until their commands end.
        workers.shutdown(wait=False, cancel_futures=True)
        active.close()
        raise
    finally:
        workers.shutdown(wait=True)
        if own_pool:
            active.close()
