"""What fatctl records of its calls to the outside world, and the masking that keeps secrets
out of that record.

Every HTTP request to an API (method, URL, status, duration) is recorded on the logger
`fatctl.api` by the one place each client sends from (the hcloud and Cloudflare clients' paced
transports, the sandbox's admin client, the HTTPS probe), and every SSH command (where, the
command line, exit status, duration; never its stdin) on `fatctl.ssh` by the runner. Nothing
is shown or written unless the operator asked for it (`-v`, `--debug`, `--log-file`:
fatctl.cli.logsetup attaches the handlers); until then a call costs one level check.

Masking happens twice. Here, by shape: the value of a URL's query parameter or header whose
name says it is a credential, a URL's password, the value of every `NAME=value` assignment in
a remote command. Then, on every line a handler writes (`mask`): each secret value revealed in
this process (`Sensitive.reveal`) and the credential shapes `redact` knows.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from fatctl.sensitive import REDACTED, redact, revealed

API = logging.getLogger("fatctl.api")
SSH = logging.getLogger("fatctl.ssh")

_SECRET_NAME = re.compile(r"(?i)token|secret|passw|key|sig|credential|auth|session|cookie")
_QUERY_PAIR = re.compile(r"(^|[&;])([^=&;#]+)=([^&;#]*)")
# NAME=value at the start of a shell word (not `--opt=value`); the value unquoted or quoted.
_ASSIGNMENT = re.compile(r"(?<![\w-])([A-Za-z_]\w*)=('[^']*'|\"(?:[^\"\\]|\\.)*\"|[^\s;&|)]*)")


def mask(text: str) -> str:
    """`text` without any secret value revealed so far or any credential-shaped substring."""
    return redact(text, revealed())


def mask_url(url: str) -> str:
    """A URL with its password and the values of credential-named query parameters masked."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if "@" in host:
        userinfo, _, hostport = host.rpartition("@")
        host = f"{userinfo.partition(':')[0]}:{REDACTED}@{hostport}"
    path, question, query = path.partition("?")
    query = _QUERY_PAIR.sub(
        lambda m: m.group(0) if not _SECRET_NAME.search(m.group(2))
        else f"{m.group(1)}{m.group(2)}={REDACTED}",
        query,
    )  # fmt: skip
    return mask(f"{scheme}{sep}{host}{slash}{path}{question}{query}" if sep else url)


def mask_headers(headers: Mapping[str, str]) -> str:
    """Headers as `Name: value` pairs; a credential-named one keeps only its scheme word."""
    shown = []
    for name, value in headers.items():
        if _SECRET_NAME.search(name):
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} {REDACTED}".lstrip()
        shown.append(f"{name}: {value}")
    return mask("; ".join(shown))


def mask_command(command: str) -> str:
    """A remote command line with the value of every `NAME=value` assignment masked."""
    return mask(_ASSIGNMENT.sub(lambda m: f"{m.group(1)}={REDACTED}", command))


class Call:
    """What the caller learns about a call while it runs: its outcome (a status, an exit)."""

    __slots__ = ("outcome",)

    def __init__(self) -> None:
        self.outcome: object = "no answer"


@contextmanager
def _timed(log: logging.Logger, what: Callable[[], str]) -> Iterator[Call]:
    call = Call()
    if not log.isEnabledFor(logging.INFO):
        yield call
        return
    started = time.monotonic()
    try:
        yield call
    except BaseException as exc:
        call.outcome = f"failed: {type(exc).__name__}"
        raise
    finally:
        took_ms = (time.monotonic() - started) * 1000
        log.info("%s -> %s (%.0f ms)", what(), call.outcome, took_ms)


def api_call(
    method: str, url: str, headers: Mapping[str, str] | None = None
) -> AbstractContextManager[Call]:
    """Record one HTTP request around the block; set `.outcome` to the status it got."""
    if headers is not None and API.isEnabledFor(logging.DEBUG):
        API.debug("%s %s headers: %s", method, mask_url(url), mask_headers(headers))
    return _timed(API, lambda: f"{method} {mask_url(url)}")


def ssh_command(
    where: str, command: str, stdin: bytes | None = None
) -> AbstractContextManager[Call]:
    """Record one remote command around the block; set `.outcome` to its exit status."""
    if stdin and SSH.isEnabledFor(logging.DEBUG):
        SSH.debug("%s: %d bytes on stdin (never recorded)", where, len(stdin))
    return _timed(SSH, lambda: f"{where}: {mask_command(command)}")
