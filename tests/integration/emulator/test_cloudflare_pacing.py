"""fatctl's rate budget reads Cloudflare's own headers, so its pacing engages against Cloudflare
before the limit (whose 429 blocks every call for five minutes), and still reads Hetzner's."""

from __future__ import annotations

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


def test_pacing_engages_against_the_emulator_before_the_block(tmp_path: Path) -> None:
    """Twenty requests a window: the budget (reserve 5%: one request) sends nineteen, then asks
    to wait for the window's reset; the emulator never had to refuse one. The old budget never
    waited and the twentieth-plus request met the 429 and its block."""
    handle = start_cloudflare_emulator(tmp_path, rate_limit=20, block_seconds=600)
    try:
        sleeps: list[float] = []
        budget = RateBudget("cf-pacing")
        settings = Settings(tmp_path, "", cloudflare_api_token=Sensitive(handle.token),
                            cloudflare_base_url=handle.url)  # fmt: skip
        cf = Cf(settings, Timing.instant(), budget=budget, sleep=sleeps.append)
        for _ in range(19):
            cf.call("list zones", lambda: cf.client.zones.list().result)
        assert sleeps == []
        assert budget.view().remaining == 1 and budget.view().limit == 20
        cf.call("list zones", lambda: cf.client.zones.list().result)
        assert len(sleeps) == 1 and 290 <= sleeps[0] <= 301
        assert handle.stats()["budget"]["refused"] == 0
    finally:
        handle.stop()
