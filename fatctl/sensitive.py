"""The `Sensitive` wrapper and redaction: how secret values move through fatctl unprinted.

Kept free of heavy imports so the CLI can use it at start-up.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

REDACTED = "***"

# Every value revealed in this process: a log line may carry one that reached a URL, a header
# or a remote command, and the log's formatter masks them all (fatctl.calllog).
_REVEALED: set[str] = set()
_REVEALED_LOCK = threading.Lock()


class Sensitive:
    """A secret value whose str/repr/format never show it; call `.reveal()` at the point of use."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        if len(self._value) >= 4:  # as `redact`: shorter ones would mask ordinary text
            with _REVEALED_LOCK:
                _REVEALED.add(self._value)
        return self._value

    def __repr__(self) -> str:
        return f"Sensitive({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sensitive) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Sensitive", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would be a way to leak the value into a file or a log; refuse it.
        raise TypeError("Sensitive values cannot be pickled")


def revealed() -> list[str]:
    """The secret values revealed so far, longest first (so no value is masked only in part)."""
    with _REVEALED_LOCK:
        return sorted(_REVEALED, key=len, reverse=True)


# Shapes of credentials that must never leave fatctl even if they reach a message by mistake.
_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"(?i)(token|secret|password|passphrase|api[_-]?key)(\s*[=:]\s*)(\S+)"),
)


def redact(text: str, secrets: Iterable[str | Sensitive] = ()) -> str:
    """Replace known secret values and credential-shaped substrings in `text`."""
    for secret in secrets:
        raw = secret.reveal() if isinstance(secret, Sensitive) else secret
        if raw and len(raw) >= 4:
            text = text.replace(raw, REDACTED)
    text = _PATTERNS[0].sub(REDACTED, text)
    return _PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
