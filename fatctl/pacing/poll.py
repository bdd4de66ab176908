"""How fatctl waits for something to become true: one abstraction for every poll.

`Poll` is a fixed pause between tries plus the sleep and the clock it uses, so a test injects
one object (`Poll(0, fake.sleep, fake.clock)`) instead of three loose parameters; `Backoff` is a
`Poll` whose pause grows, with an overall timeout and `wait_for`. API retries are `Timing`'s job
(`pacing.timing`): those wait for a service, these for a box or a resource to be ready.
Monotonic time only: calendar time is `fatctl.clock`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fatctl.errors import FatctlError

T = TypeVar("T")


class WaitTimeout(FatctlError):
    exit_code = 1


@dataclass(frozen=True)
class Poll:
    """A fixed pause between tries, and the clocks it sleeps and reads by."""

    interval: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def deadline(self, timeout_s: float) -> float:
        return self.clock() + timeout_s

    def expired(self, deadline: float) -> bool:
        return self.clock() >= deadline

    def left(self, deadline: float) -> float:
        return max(0.0, deadline - self.clock())

    def pause(self) -> None:
        self.sleep(self.interval)


@dataclass(frozen=True)
class Backoff(Poll):
    """Exponential pacing from `interval` up to `cap`, for at most `timeout` seconds."""

    interval: float = 1.0
    factor: float = 1.5
    cap: float = 10.0
    timeout: float = 900.0

    @classmethod
    def instant(cls, timeout: float = 5.0) -> Backoff:
        return cls(interval=0.0, factor=1.0, cap=0.0, timeout=timeout)

    def wait_for(self, what: str, probe: Callable[[], T | None]) -> T:
        """Call `probe` until it returns something other than None, or time out.

        A probe signals "not yet" with None; a probe that raises ends the wait with that error.
        """
        deadline = self.deadline(self.timeout)
        delay = self.interval
        while True:
            found = probe()
            if found is not None:
                return found
            if self.expired(deadline):
                raise WaitTimeout(f"timed out after {self.timeout:g}s waiting for {what}")
            self.sleep(min(delay, self.left(deadline)))
            delay = min(self.cap, delay * self.factor) if delay else self.interval
