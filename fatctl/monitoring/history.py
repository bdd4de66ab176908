"""What recent sweeps say about each box: down, flapping, or worth an SSH look.

One failed probe says little (a dropped packet, a gateway restarting for a config push); a box
that failed its last `down_after` sweeps is down, and one whose answer keeps changing is
flapping. Only boxes failing now are escalated to SSH `fat-health --json`, so a sweep of
thousands of boxes opens SSH sessions to the few that need them.

The judgement (`consecutive_failures`, `transitions`) is pure over a sequence of results. Where
the results live is behind `HistoryStore`: `MemoryHistoryStore` in one process; `fatctl serve`'s
sweeps store theirs in the database (`probe_results`, see `store`), and `store.stored_history`
reads them back into one of these for the metrics and `fatctl status`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Protocol

from fatctl.monitoring.probe import ProbeResult


def consecutive_failures(results: Sequence[ProbeResult]) -> int:
    """How many of the newest results (oldest first in `results`) failed in a row."""
    count = 0
    for result in reversed(results):
        if result.ok:
            break
        count += 1
    return count


def transitions(results: Sequence[ProbeResult]) -> int:
    """How often the answer changed between ok and failed across `results`."""
    return sum(a.ok != b.ok for a, b in pairwise(results))


class HistoryStore(Protocol):
    """Where the recent results of each agent are kept, oldest first, at most `keep` each."""

    def append(self, result: ProbeResult) -> None: ...

    def recent(self, agent: str) -> Sequence[ProbeResult]: ...

    def agents(self) -> Iterable[str]: ...

    def forget(self, agent: str) -> None: ...


class MemoryHistoryStore:
    """The last `keep` results per agent, in this process only. A sweep records while a scrape
    reads (another thread in `fatctl serve`), hence the lock."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._results: dict[str, deque[ProbeResult]] = {}
        self._lock = threading.Lock()

    def append(self, result: ProbeResult) -> None:
        with self._lock:
            self._results.setdefault(result.agent, deque(maxlen=self._keep)).append(result)

    def recent(self, agent: str) -> Sequence[ProbeResult]:
        with self._lock:
            return tuple(self._results.get(agent, ()))

    def agents(self) -> Iterable[str]:
        with self._lock:
            return tuple(self._results)

    def forget(self, agent: str) -> None:
        with self._lock:
            self._results.pop(agent, None)


class ProbeHistory:
    """The recent sweeps and what they say.

    `down_after`: consecutive failed sweeps before a box counts as down. `flap_after`: changes
    between ok and failed within the kept window before a box counts as flapping.
    `escalate_after`: consecutive failures before a failing box gets an SSH check (a flapping
    box that is failing now gets one at once: waiting for a run of failures might never end).
    """

    def __init__(
        self,
        store: HistoryStore | None = None,
        *,
        keep: int = 10,
        down_after: int = 3,
        flap_after: int = 4,
        escalate_after: int = 2,
    ) -> None:
        if min(keep, down_after, flap_after, escalate_after) < 1 or down_after > keep:
            raise ValueError("history: counts must be >= 1 and down_after <= keep")
        self.store: HistoryStore = store or MemoryHistoryStore(keep)
        self.down_after = down_after
        self.flap_after = flap_after
        self.escalate_after = escalate_after
        self.last_sweep_s: float | None = None  # how long the newest recorded sweep took

    def record(self, results: Iterable[ProbeResult], *, sweep_s: float | None = None) -> None:
        for result in results:
            self.store.append(result)
        if sweep_s is not None:
            self.last_sweep_s = sweep_s

    def retain(self, agents: Iterable[str]) -> None:
        """Forget agents that are no longer probed (destroyed, suspended)."""
        keep = set(agents)
        for agent in list(self.store.agents()):
            if agent not in keep:
                self.store.forget(agent)

    def latest(self) -> list[ProbeResult]:
        """Each agent's newest result, by agent name."""
        newest = (self.store.recent(a) for a in sorted(self.store.agents()))
        return [results[-1] for results in newest if results]

    def failing_for(self, agent: str) -> int:
        return consecutive_failures(self.store.recent(agent))

    def down(self) -> list[str]:
        return [a for a in sorted(self.store.agents()) if self.failing_for(a) >= self.down_after]

    def flapping(self) -> list[str]:
        return [
            a
            for a in sorted(self.store.agents())
            if transitions(self.store.recent(a)) >= self.flap_after
        ]

    def escalate(self) -> list[str]:
        """The boxes to check over SSH now: failing, and either for a while or flapping."""
        flapping = set(self.flapping())
        return [
            a
            for a in sorted(self.store.agents())
            if (failing := self.failing_for(a)) >= 1
            and (failing >= self.escalate_after or a in flapping)
        ]
