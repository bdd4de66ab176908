"""The alert rules fatctl ships (`rules/fatctl.rules.yml`), as a path and as text.

`rules_text(for_duration=...)` rewrites every rule's `for:` so a test (or a demo) can see alerts
fire in seconds with the very same expressions; the shipped file itself is never changed.
"""

from __future__ import annotations

import re
from pathlib import Path

RULES_FILE = Path(__file__).parent / "rules" / "fatctl.rules.yml"

_FOR_LINE = re.compile(r"^(?P<indent>\s+)for:\s*\S+\s*$", re.MULTILINE)
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")  # Prometheus's duration syntax


def rules_text(*, for_duration: str | None = None) -> str:
    text = RULES_FILE.read_text()
    if for_duration is None:
        return text
    if not _DURATION.match(for_duration):
        raise ValueError(f"not a Prometheus duration: {for_duration!r}")
    return _FOR_LINE.sub(lambda m: f"{m['indent']}for: {for_duration}", text)
