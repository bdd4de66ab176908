"""The client's side of an API's rate budget: a mirror of the server's token bucket, fed by the
`RateLimit-*` headers, that hands every outgoing request a slot.

Both clouds meter requests with a bucket that refills continuously (Hetzner: 3600 per hour,
Cloudflare: 1200 per 5 minutes). Reacting to 429s is too late when fifty threads share one
budget: they all fire, all get refused and all retry together. So each request takes a token
from a local estimate *before* it is sent; every answer resets the estimate to the server's
count less the requests still in flight, and between answers it refills at the rate the
headers imply. Once it falls below `reserve` of the limit callers get successive slots spaced
at that refill rate: a fleet-wide run degrades into a slower run instead of a wall
of 429s. Pure apart from the injectable clock; callers do the sleeping.

The two clouds describe their budgets differently. Hetzner sends `RateLimit-Limit`,
`RateLimit-Remaining` and `RateLimit-Reset` (a UNIX time) over a bucket that refills
continuously. Cloudflare sends `Ratelimit: "default";r=<remaining>;t=<seconds to the window's
reset>` and `Ratelimit-Policy: "default";q=<quota>;w=<window seconds>`
(developers.cloudflare.com/fundamentals/api/reference/limits) over a window that refills all at
once, and blocks every call for five minutes once it is exceeded: against such a window the
budget learns no refill rate and, below the reserve, waits for the window's reset.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# An answer saying its window ends within this of the moment the budget saw that window end is
# news of the ended window (its `t` rounded up, the answer late), not of the next one.
STALE_MARGIN_S = 2.0
# How often a request waits again for its window slot when every slot is held by a request
# still in flight (its answer, which starts the slot's countdown, has not come back).
ADMIT_POLL_S = 0.25


def header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower())


def server_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait: Retry-After (seconds or HTTP date), else the
    budget's reset (Hetzner's RateLimit-Reset, Cloudflare's Ratelimit `t`)."""
    if (raw := header(headers, "Retry-After")) is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - now)
            except (TypeError, ValueError):
                return None
    return limits(headers, now).reset


def retry_hint(status: int, headers: Mapping[str, str], now: float) -> float | None:
    """How long a failed request's answer asks us to wait: its Retry-After, or for a 429 the
    budget's reset (on a 5xx the reset says when the bucket is full, not when to retry)."""
    if status not in RETRY_STATUSES:
        return None
    if status == 429:
        return server_wait(headers, now)
    return server_wait({k: v for k, v in headers.items() if k.lower() == "retry-after"}, now)


def reset_seconds(raw: str | None, now: float) -> float | None:
    """`RateLimit-Reset` as seconds from now: Hetzner sends a UNIX time, the IETF draft seconds."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return max(0.0, value - now) if value > 1e9 else max(0.0, value)


@dataclass(frozen=True)
class Limits:
    """What one answer's headers say about the budget (None: not said)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # seconds from now until the budget is full again
    window: bool = False  # refilled all at once at the reset (Cloudflare), not continuously
    span: float | None = None  # the window's length in seconds (Cloudflare's `w`)


def limits(headers: Mapping[str, str], now: float) -> Limits:
    """The budget in an answer's headers, in whichever of the two dialects it came."""
    service = header(headers, "Ratelimit")
    if service is not None:
        item = _structured_item(service)
        policy = _structured_item(header(headers, "Ratelimit-Policy") or "", item[0])
        reset, span = item[1].get("t"), _int(policy[1].get("w"))
        return Limits(
            _int(policy[1].get("q")),
            _int(item[1].get("r")),
            None if reset is None or not reset.isdigit() else float(reset),
            window=True,
            span=float(span) if span else None,
        )
    return Limits(
        _int(header(headers, "RateLimit-Limit")),
        _int(header(headers, "RateLimit-Remaining")),
        reset_seconds(header(headers, "RateLimit-Reset"), now),
    )


def _structured_item(raw: str, name: str | None = None) -> tuple[str, dict[str, str]]:
    """One item of a structured-field list such as `"default";r=50;t=30, "other";r=1;t=2`:
    the one called `name` if there is one, else the first. Returns (name, parameters)."""
    items = []
    for member in raw.split(","):
        label, *params = (part.strip() for part in member.split(";"))
        pairs = (p.partition("=") for p in params)
        items.append((label.strip('"'), {k.strip().lower(): v.strip() for k, _, v in pairs}))
    return next((i for i in items if i[0] == name), items[0] if items else ("", {}))


@dataclass(frozen=True)
class BudgetView:
    """A snapshot for `fatctl status --api` and the reliability tests."""

    api: str
    limit: int | None
    remaining: int | None
    reset_in_s: float | None
    requests_seen: int
    throttled_s: float
    refill_per_s: float | None = None
    paced_requests: int = 0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _int(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() else None


class RateBudget:
    """One API's budget as this process sees it; thread-safe."""

    def __init__(self, api: str, *, reserve: float = 0.05, clock: Callable[[], float] = time.time):
        self.api = api
        self.reserve = reserve
        self.clock = clock
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.remaining: int | None = None  # what the server said last
        self.reset_at: float | None = None
        self.rate: float | None = None  # tokens per second, from the headers
        self._local = threading.local()  # each thread's last answer's wait hint
        self.requests_seen = 0
        self.throttled_s = 0.0
        self.paced_requests = 0
        self._tokens: float | None = None  # local estimate, minus requests in flight
        self._in_flight = 0  # requests given a token whose answer (or failure) is not back
        self._stamp = 0.0
        self._rate_from = 0  # the deficit the rate was estimated from (bigger: more precise)
        self.window = False  # the server's budget refills all at once at its reset (Cloudflare)
        self.span: float | None = None  # that window's length
        self._news_after = 0.0  # answers saying their window ends earlier speak of an old one
        self._heard = True  # whether an answer has spoken of the current window yet
        # Against a window, what this process itself sent: requests on the wire and when each
        # recent one was answered (see `_admit`).
        self._sending = 0
        self._landings: deque[float] = deque(maxlen=100_000)
        self._block_end = 0.0  # answers before a 429's block ends count as landing at its end

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer's headers (any status; 429s included)."""
        now = self.clock()
        with self._lock:
            self.requests_seen += 1
            said = limits(headers, now)
            limit, remaining, reset = said.limit, said.remaining, said.reset
            self._local.hint = retry_hint(status, headers, now)
            if limit and limit != self.limit:
                self.limit, self.rate, self._rate_from = limit, None, 0  # a new plan: relearn
            if said.window:
                self.window, self.span = True, said.span or self.span
                if status == 429 and reset is not None:
                    self._count_from(now + reset)
                self._observe_window(now, remaining, reset, refused=status == 429)
                return
            if reset is not None:
                self.reset_at = now + reset
            if status != 429 and limit and remaining is not None and reset:
                self._learn_rate(limit - remaining, reset)
            if remaining is not None:
                self.remaining = remaining
                self._refill(now)
                # The server's count is the truth, less what we sent that it has not seen yet.
                self._tokens = float(remaining - self._in_flight)

    def _observe_window(
        self, now: float, remaining: int | None, reset: float | None, refused: bool
    ) -> None:
        """An answer about a window that refills all at once. Answers arrive out of order, and
        late ones from a window that has ended must not refill the current one a second time:
        within a window the estimate only goes down, and a new window is believed only once an
        answer says it ends later than the old one did. A 429 is Cloudflare's block: nothing
        until its `t`, then a new window."""
        if remaining is None or reset is None:
            return
        self.remaining = remaining
        ends, truth = now + reset, float(remaining - self._in_flight)
        if self._tokens is None:
            self._tokens, self.reset_at = truth, ends
            return
        self._refill(now)
        if ends < self._news_after:
            return  # from a window that has ended (its `t` rounded up, the answer late)
        if refused:  # the block ends at `ends`; the window after it, a span later at the earliest
            self._tokens, self.reset_at = min(self._tokens, truth), ends
            self._next_window(ends)
            return
        if not self._heard:  # the first word on a window we rolled into
            self._tokens, self.reset_at, self._heard = truth, ends, True
            return
        self._tokens = min(self._tokens, truth)
        self.reset_at = max(self.reset_at or ends, ends)

    def _count_from(self, block_end: float) -> None:
        """What reaches the server before a block ends may count in the window after it, so for
        this process's own count (`_admit`) every request answered so far, or still on the
        wire, is taken as answered when the block ends."""
        self._block_end = max(self._block_end, block_end)
        self._landings = deque((max(t, block_end) for t in self._landings), self._landings.maxlen)

    def _next_window(self, due: float) -> None:
        """The server's window ending at `due` (as far as we know: no earlier) is over. The next
        began at its first request after that and ends a span later; news of the old one (whose
        `t` was rounded up, the answer late) ends by `due` plus the margin."""
        gap = max(STALE_MARGIN_S, (self.span or 0.0) - STALE_MARGIN_S)
        self._news_after, self._heard = due + gap, False

    @property
    def last_wait_hint(self) -> float | None:
        """What the last answer this thread received asked it to wait (None: nothing). Per
        thread: the SDK's errors do not carry headers, and fifty threads share one budget."""
        return getattr(self._local, "hint", None)

    def _learn_rate(self, deficit: int, reset: float) -> None:
        # Time-to-full over tokens missing is the refill rate; the header's whole seconds make
        # small deficits imprecise, so the estimate from the largest deficit seen is kept. 429s
        # are skipped: a burst's headers describe a window, not the bucket's refill.
        if deficit > 0 and deficit >= self._rate_from:
            self.rate, self._rate_from = deficit / reset, deficit

    def _refill(self, now: float) -> None:
        if self.window:
            if self._tokens is not None and self.limit and self.reset_at and now >= self.reset_at:
                # A new window: all of it, less what is still in flight. It ends one window
                # from now at the latest (it began at the server's first request after the old
                # one ended, which was no later than now).
                self._tokens = float(self.limit - self._in_flight)
                self._next_window(self.reset_at)
                self.reset_at = now + self.span if self.span else None
        elif self._tokens is not None and self.rate and self.limit:
            self._tokens = min(float(self.limit), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> float:
        """Take a token for one request; returns how long to wait before sending it."""
        now = self.clock()
        with self._lock:
            self._in_flight += 1
            if self._tokens is None or not self.limit:
                return 0.0  # nothing known yet: the first answer will tell
            self._refill(now)
            self._tokens -= 1.0
            floor = self.limit * self.reserve
            if self._tokens >= floor:
                return 0.0
            wait = self._wait_below(self._tokens, floor, now)
            self.throttled_s += wait
            self.paced_requests += 1
            return wait

    def landed(self) -> None:
        """The request `take` was for is answered (or failed): call before `observe`."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._sending = max(0, self._sending - 1)
            self._landings.append(max(self.clock(), self._block_end))

    def _admit(self) -> float:
        """Against a window: 0 if one more request may go on the wire now (it is then counted
        as sent), else how long to wait before asking again.

        The estimate from headers can run ahead of the server when answers come back late and
        out of order, and one request past Cloudflare's quota blocks every call for minutes.
        So this process also keeps its own count, which holds however late answers are: a
        request is sent only while fewer than the usable quota of its own requests are on the
        wire or were answered within the last window's length. Any server window (of that
        length, starting when it likes) that holds the request being sent can only hold
        requests that were answered after it began, or not yet, so they are all in that count.
        """
        now = self.clock()
        with self._lock:
            if not (self.window and self.span and self.limit):
                # Counted all the same: before the first answer says the budget is a window,
                # requests already on the wire must be in the count once it does.
                self._sending += 1
                return 0.0
            while len(self._landings) > 0 and self._landings[0] <= now - self.span:
                self._landings.popleft()
            usable = max(1.0, self.limit * (1 - self.reserve))
            if self._sending + len(self._landings) + 1 <= usable:
                self._sending += 1
                return 0.0
            # A slot frees only when an answer is a window old: wait for the oldest, or, if all
            # are still on the wire, for some to come back.
            if self._landings:
                return max(0.01, self._landings[0] + self.span - now)
            return ADMIT_POLL_S

    def delay(self) -> float:
        """How long a request sent now would wait, without taking a token."""
        now = self.clock()
        with self._lock:
            if self._tokens is None or not self.limit:
                return 0.0
            self._refill(now)
            floor = self.limit * self.reserve
            if self._tokens - 1.0 >= floor:
                return 0.0
            return self._wait_below(self._tokens - 1.0, floor, now)

    def _wait_below(self, tokens: float, floor: float, now: float) -> float:
        """The wait of a request that leaves `tokens` (under the reserve `floor`): its place in
        the queue over the refill rate; against a window, the window's reset, or a later
        window's for requests queued past what one window holds (they would all fire at the
        reset and overdraw it)."""
        if self.rate:
            return (floor - tokens) / self.rate
        wait = max(0.0, (self.reset_at or now) - now)
        usable = (self.limit or 0) - floor
        if self.window and self.span and usable >= 1:
            wait += self.span * (math.ceil((floor - tokens) / usable) - 1)
        return wait

    def pace(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Take a token and wait for its slot; once per HTTP request, paired with `landed`."""
        wait = self.take()
        if wait > 0:
            sleep(wait)
        self._await_admission(sleep)

    def _await_admission(self, sleep: Callable[[float], None]) -> None:
        """Against a window, wait until this process's own count lets the request go."""
        while (held := self._admit()) > 0:
            with self._lock:
                self.throttled_s += held
            sleep(held)

    def view(self) -> BudgetView:
        with self._lock:
            reset_in = None if self.reset_at is None else max(0.0, self.reset_at - self.clock())
            return BudgetView(self.api, self.limit, self.remaining, reset_in, self.requests_seen,
                              self.throttled_s, self.rate, self.paced_requests)  # fmt: skip


_BUDGETS: dict[str, RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()
# What builds a process's tracker for an API: its own mirror, unless the service made every
# tracker share one budget with the other processes (`share_budgets`).
_FACTORY: list[Callable[[str], RateBudget]] = [RateBudget]


def budget_for(api: str) -> RateBudget:
    """One tracker per API per process, so every client (and thread) shares one budget."""
    with _BUDGETS_LOCK:
        if api not in _BUDGETS:
            _BUDGETS[api] = _FACTORY[0](api)
        return _BUDGETS[api]


def share_budgets(factory: Callable[[str], RateBudget] | None) -> None:
    """From now on build trackers with `factory` (None: the process's own again), forgetting
    the ones built so far: `fatctl serve` and `fatctl worker` share the database's budget
    (`pacing.shared_budget`), the CLI keeps its own."""
    with _BUDGETS_LOCK:
        _FACTORY[0] = factory or RateBudget
        _BUDGETS.clear()


def budget_view() -> list[dict[str, object]]:
    """Every API budget this process has observed, for `fatctl status --api`."""
    return [b.view().as_dict() for b in _BUDGETS.values()]
