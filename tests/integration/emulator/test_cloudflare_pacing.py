"""fatctl's rate budget reads Cloudflare's own headers, so its pacing engages against Cloudflare
before the limit (whose 429 blocks every call for five minutes), and still reads Hetzner's."""

from __future__ import annotations

import time
from pathlib import Path

from fatctl.config import Settings
from fatctl.dns.cf_client import Cf
from fatctl.pacing.budget import RateBudget, limits, server_wait
from fatctl.pacing.timing import Timing
from fatctl.sandbox.cloudflare import start_cloudflare_emulator
from fatctl.sensitive import Sensitive


def test_headers_in_both_dialects() -> None:
    """Cloudflare (developers.cloudflare.com/fundamentals/api/reference/limits): `Ratelimit:
    "default";r=50;t=30` ("the remaining quota (r) and the time next window resets (t)") and
    `Ratelimit-Policy: "burst";q=100;w=60` ("the total quota (q) and the time window the quota
    applies to (w)"). Hetzner: RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (a UNIX
    time). The old budget read only Hetzner's: Cloudflare's came out as nothing."""
    cf = limits({"Ratelimit": '"default";r=50;t=30', "Ratelimit-Policy": '"burst";q=100;w=60'}, 0)
    assert (cf.limit, cf.remaining, cf.reset, cf.window) == (100, 50, 30.0, True)
    named = limits({"ratelimit": '"a";r=1;t=2, "b";r=7;t=9',
                    "ratelimit-policy": '"a";q=10;w=60, "b";q=70;w=300'}, 0)  # fmt: skip
    assert (named.limit, named.remaining, named.reset) == (10, 1, 2.0)  # the policy of its name
    now = 1_700_000_000.0
    hz = limits({"RateLimit-Limit": "3600", "RateLimit-Remaining": "3599",
                 "RateLimit-Reset": str(int(now) + 1)}, now)  # fmt: skip
    assert (hz.limit, hz.remaining, hz.reset, hz.window) == (3600, 3599, 1.0, False)
    assert server_wait({"Ratelimit": '"default";r=0;t=42'}, now) == 42.0


def test_the_budget_waits_for_the_window_instead_of_learning_a_refill() -> None:
    """Cloudflare's quota comes back all at once when the window resets: spending below the
    reserve waits for the reset; a refill rate learnt from the headers would let requests
    through that the server then answers with a five-minute block."""
    now = [1000.0]
    budget = RateBudget("cf", reserve=0.1, clock=lambda: now[0])
    headers = {"Ratelimit": '"default";r=11;t=200', "Ratelimit-Policy": '"default";q=100;w=300'}
    budget.observe(200, headers)
    assert budget.take() == 0.0  # 10 left: at the reserve, not below
    budget.landed()
    assert budget.take() == 200.0  # below the reserve: until the window resets
    budget.landed()
    now[0] += 200.0
    assert budget.take() == 0.0  # a new window: the whole quota again
    assert budget.rate is None


def test_after_a_429_only_news_of_the_window_after_the_block_counts() -> None:
    """A 429 is Cloudflare's block: nothing until its `t`, then a new window, which ends a span
    after the block at the earliest. An answer sent before the block, arriving after it, speaks
    of the old window (here: 5 s left): believing it would schedule a second refill inside the
    next window."""
    now = [1000.0]
    budget = RateBudget("cf", reserve=0.1, clock=lambda: now[0])
    policy = {"Ratelimit-Policy": '"default";q=20;w=60'}
    budget.observe(200, {"Ratelimit": '"default";r=15;t=5', **policy})
    budget.observe(429, {"Ratelimit": '"default";r=0;t=1', "Retry-After": "1", **policy})
    budget.observe(200, {"Ratelimit": '"default";r=14;t=5', **policy})  # late, old window
    assert budget.reset_at == 1001.0 and budget._tokens == 0.0
    now[0] += 1.0
    assert budget.delay() == 0.0 and budget._tokens == 20.0  # the window after the block
    budget.observe(200, {"Ratelimit": '"default";r=13;t=4', **policy})  # old window, later
    assert budget._tokens == 20.0 and budget.reset_at == 1061.0
    budget.observe(200, {"Ratelimit": '"default";r=19;t=60', **policy})  # the new window
    assert budget._tokens == 19.0 and budget.reset_at == 1061.0


def test_requests_queued_past_a_window_wait_for_a_later_one() -> None:
    """Fifty threads below the reserve must not all be sent at the reset: the next window holds
    only its quota (less the reserve), the rest wait a window longer per window's worth."""
    now = [1000.0]
    budget = RateBudget("cf", reserve=0.1, clock=lambda: now[0])
    budget.observe(200, {"Ratelimit": '"default";r=10;t=30',
                         "Ratelimit-Policy": '"default";q=10;w=60'})  # fmt: skip
    waits = [budget.take() for _ in range(30)]
    assert waits[:9] == [0.0] * 9  # down to the reserve of one
    assert waits[9:18] == [30.0] * 9  # the next window holds nine
    assert waits[18:27] == [90.0] * 9 and waits[27:] == [150.0] * 3


def test_a_late_answer_from_an_ended_window_refills_nothing() -> None:
    """Answers come back out of order. One sent in a window that has since ended (small `t`)
    arriving after the budget rolled into the next window must not roll it over a second time
    (a second full quota in one window is the overdraw Cloudflare blocks for five minutes);
    nor may an older answer with more left raise the estimate within a window."""
    now = [1000.0]
    budget = RateBudget("cf", reserve=0.1, clock=lambda: now[0])

    def answer(left: int, reset_in: int) -> None:
        budget.observe(200, {"Ratelimit": f'"default";r={left};t={reset_in}',
                             "Ratelimit-Policy": '"default";q=20;w=60'})  # fmt: skip

    answer(5, 10)
    answer(9, 10)  # older news, more left: not believed
    assert budget.view().remaining == 9 and budget._tokens == 5.0
    for _ in range(3):
        budget.take()  # three requests in flight
    now[0] += 10.0
    assert budget.delay() == 0.0  # rolled over: 20 less the 3 in flight
    assert budget._tokens == 17.0
    answer(0, 1)  # one of the three, answered late, from the window that ended
    assert budget._tokens == 17.0
    budget.landed()
    answer(18, 60)  # the first word on the new window
    assert budget._tokens == 16.0 and budget.reset_at == now[0] + 60


def test_pacing_engages_against_the_emulator_before_the_block(tmp_path: Path) -> None:
    """Twenty requests a window: the budget (reserve 5%: one request) sends nineteen, then asks
    to wait for the window's reset; the emulator never had to refuse one. The old budget never
    waited and the twentieth-plus request met the 429 and its block."""
    handle = start_cloudflare_emulator(tmp_path, rate_limit=20, block_seconds=600)
    try:
        sleeps: list[float] = []
        skew = [0.0]  # the budget's clock moves on by what it was told to sleep, at once

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            skew[0] += seconds

        budget = RateBudget("cf-pacing", clock=lambda: time.time() + skew[0])
        settings = Settings(tmp_path, "", cloudflare_api_token=Sensitive(handle.token),
                            cloudflare_base_url=handle.url)  # fmt: skip
        cf = Cf(settings, Timing.instant(), budget=budget, sleep=sleep)
        for _ in range(19):
            cf.call("list zones", lambda: cf.client.zones.list().result)
        assert sleeps == []
        assert budget.view().remaining == 1 and budget.view().limit == 20
        cf.call("list zones", lambda: cf.client.zones.list().result)
        assert len(sleeps) == 1 and 290 <= sleeps[0] <= 301
        assert handle.stats()["budget"]["refused"] == 0
    finally:
        handle.stop()


def test_late_answers_cannot_talk_the_budget_past_the_window() -> None:
    """Answers that come back late say more is left than is (here every one says the window is
    full): the budget's own count of what it sent still keeps any window's worth of its
    requests within the usable quota. Before it, all thirty went out at once."""
    now = [1000.0]
    budget = RateBudget("cf", reserve=0.1, clock=lambda: now[0])
    stale = {"Ratelimit": '"default";r=10;t=6', "Ratelimit-Policy": '"default";q=10;w=6'}
    budget.observe(200, stale)
    sent: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    for _ in range(30):
        budget.pace(sleep)
        sent.append(now[0])
        now[0] += 0.01  # each answer comes back a moment later, claiming the window is full
        budget.landed()
        budget.observe(200, stale)
    busiest = max(sum(1 for t in sent if start <= t < start + 6) for start in sent)
    assert busiest == 9  # the usable quota (10 less the 10% reserve), never more
    assert sent[-1] - sent[0] > 12  # thirty requests took three windows and more


def test_requests_answered_during_a_block_count_in_the_window_after_it() -> None:
    """A 429 says nothing is left until its `t`, and the next window begins then: what reaches
    the server before that may count in it (the emulator's injected 429s do exactly that). The
    budget's own count takes every answer up to the block's end as landing at its end."""
    now = [1000.0]
    budget = RateBudget("cf", reserve=0.1, clock=lambda: now[0])
    policy = {"Ratelimit-Policy": '"default";q=10;w=6'}
    budget.observe(200, {"Ratelimit": '"default";r=10;t=6', **policy})
    for _ in range(9):  # the usable quota: 10 less the 10% reserve
        budget.pace(lambda s: None)
    budget.landed()
    budget.observe(429, {"Ratelimit": '"default";r=0;t=3', "Retry-After": "3", **policy})
    for _ in range(8):  # answered during the block
        budget.landed()
    now[0] += 7.0  # past the block, and a window's length after those answers
    assert budget._admit() > 0  # but within a window of the block's end
    now[0] += 2.5
    assert budget._admit() == 0.0


def test_requests_sent_before_the_first_answer_are_in_the_count() -> None:
    """Fifty requests go out before the first answer says the budget is a window: they are on
    the wire all the same, and the window's count must hold them (it held none of them, and
    let ten more through while forty-nine were still out)."""
    now = [1000.0]
    budget = RateBudget("cf", reserve=0.1, clock=lambda: now[0])
    for _ in range(50):
        budget.pace(lambda s: None)
    budget.landed()
    budget.observe(
        200, {"Ratelimit": '"default";r=40;t=6', "Ratelimit-Policy": '"default";q=50;w=6'}
    )
    assert budget._admit() > 0  # 49 on the wire and one answered: past the usable 45
