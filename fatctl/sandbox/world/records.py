"""What the stand-ins received, kept in memory behind one lock (tests read it via admin)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Recorder:
    """Append-only lists of dicts per kind (`model`, `telegram`, `sent`), with waiting readers."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._items: dict[str, list[dict[str, Any]]] = {}

    def add(self, kind: str, item: dict[str, Any]) -> None:
        with self._lock:
            self._items.setdefault(kind, []).append({**item, "at": time.time()})
            self._lock.notify_all()

    def items(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items.get(kind, ()))

    def wait(
        self, kind: str, match: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """The first recorded item of `kind` that `match`es, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for item in self._items.get(kind, ()):
                    if match(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(left)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
