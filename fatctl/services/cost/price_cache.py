"""Hetzner's price list, cached on disk: `fatctl cost` reads the API at most once per TTL.

The cache is keyed by the API endpoint, so the sandbox's emulator and the real project never
share an entry. A write goes to a temp file renamed into place, so a killed run leaves the old
entry or the new one, never half a file; an unreadable entry is treated as absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fatctl.errors import ConfigError
from fatctl.private_paths import private_dir


def cache_path(data_dir: Path) -> Path:
    return data_dir / "cache" / "hetzner-pricing.json"


def ttl_seconds(raw: str) -> float:
    try:
        ttl = float(raw)
    except ValueError:
        raise ConfigError(f"FATCTL_PRICING_TTL must be a number of seconds (got {raw!r})") from None
    if ttl < 0:
        raise ConfigError("FATCTL_PRICING_TTL must be >= 0")
    return ttl


def _read(path: Path, endpoint: str) -> tuple[float, dict[str, Any]] | None:
    try:
        entry = json.loads(path.read_text())
        if entry["endpoint"] != endpoint or not isinstance(entry["document"], dict):
            return None
        return float(entry["fetched_at"]), entry["document"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, endpoint: str, fetched_at: float, document: dict[str, Any]) -> None:
    private_dir(path.parent)  # may be the first thing made in the data dir
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    entry = {"endpoint": endpoint, "fetched_at": fetched_at, "document": document}
    tmp.write_text(json.dumps(entry, sort_keys=True))
    tmp.replace(path)


def cached_pricing(
    path: Path,
    endpoint: str,
    ttl_s: float,
    fetch: Callable[[], dict[str, Any]],
    *,
    now: Callable[[], float] = time.time,
) -> tuple[dict[str, Any], float]:
    """The price list document and when it was fetched (epoch seconds): from the cache when
    younger than `ttl_s`, else from `fetch` (and stored)."""
    found = _read(path, endpoint)
    current = now()
    if found is not None and 0 <= current - found[0] < ttl_s:
        return found[1], found[0]
    document = fetch()
    # A read-only data dir costs a fetch next time, not a failed report.
    with contextlib.suppress(OSError):
        _write(path, endpoint, current, document)
    return document, current
