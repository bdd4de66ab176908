"""The emulators' pure parts on their own: the token bucket (with a fake clock), fault knob
validation and decisions, label selectors (with hypothesis), DNS record filters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fatctl.sandbox.apiemu.faults import Fault, FaultConfig, FaultState
from fatctl.sandbox.apiemu.ratelimit import TokenBucket
from fatctl.sandbox.apiemu.stats import endpoint_key
from fatctl.sandbox.cloudflare import records
from fatctl.sandbox.cloudflare.errors import CfError
from fatctl.sandbox.hetzner import selectors


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_continuously():
    clock = FakeClock()
    bucket = TokenBucket(3600, 3600.0, clock)  # Hetzner: one token per second
    verdicts = [bucket.take() for _ in range(3601)]
    assert all(v.allowed for v in verdicts[:3600]) and not verdicts[3600].allowed
    assert verdicts[3600].retry_after == 1 and verdicts[3600].remaining == 0
    assert verdicts[3599].reset_at == 1_000_000 + 3600  # empty: full again in an hour
    clock.now += 2.5
    assert [bucket.take().allowed for _ in range(3)] == [True, True, False]
    clock.now += 10_000
    assert bucket.peek().remaining == 3600  # never above capacity


def test_fault_config_rejects_bad_knobs():
    with pytest.raises(ValueError, match="error_rate"):
        FaultConfig(error_rate=1.5)
    with pytest.raises(ValueError, match="error_statuses"):
        FaultConfig(error_statuses=(418,))
    with pytest.raises(ValueError, match="unknown fault knob"):
        FaultConfig().updated({"explode": True})


def test_fault_decisions_follow_the_knobs():
    state = FaultState(FaultConfig(rate_limit_burst=2, locked_rate=1.0, seed=1))
    assert [state.decide(mutating=False)[0] for _ in range(3)] == [
        Fault.RATE_LIMIT,
        Fault.RATE_LIMIT,
        Fault.NONE,
    ]
    assert state.decide(mutating=True)[0] is Fault.LOCKED
    state.update({"locked_rate": 0.0, "error_rate": 1.0, "error_statuses": [502]})
    assert state.decide(mutating=True) == (Fault.SERVER_ERROR, 502)


def test_endpoint_keys_fold_ids():
    assert endpoint_key("GET", "/v1/servers/1000001/actions/9000004") == (
        "GET /v1/servers/{id}/actions/{id}"
    )
    assert endpoint_key("PUT", f"/client/v4/zones/{'a' * 32}/dns_records/{'0' * 32}") == (
        "PUT /client/v4/zones/{id}/dns_records/{id}"
    )


label_keys = st.sampled_from(["env", "plan", "managed-by", "fatctl/agent"])
label_values = st.sampled_from(["prod", "staging", "pro", "x"])
label_sets = st.dictionaries(label_keys, label_values, max_size=4)


@given(label_sets, label_keys, label_values)
def test_selector_terms_agree_with_their_meaning(labels, key, value):
    assert selectors.matches(f"{key}={value}", labels) == (labels.get(key) == value)
    assert selectors.matches(f"{key}!={value}", labels) == (labels.get(key) != value)
    assert selectors.matches(key, labels) == (key in labels)
    assert selectors.matches(f"!{key}", labels) == (key not in labels)
    assert selectors.matches(f"{key} in ({value},zz)", labels) == (labels.get(key) == value)
    both = f"{key}={value},!other"
    assert selectors.matches(both, labels) == (labels.get(key) == value)


@pytest.mark.parametrize("bad", ["a in (b", "a=b)", "=x", "a in b", "a==b==c"])
def test_malformed_selectors_raise(bad):
    with pytest.raises(ValueError):
        selectors.parse(bad)


def test_record_rules():
    assert records.fqdn("@", "sandbox.test") == "sandbox.test"
    assert records.fqdn("A1", "sandbox.test") == "a1.sandbox.test"
    assert records.fqdn("a1.sandbox.test.", "sandbox.test") == "a1.sandbox.test"
    with pytest.raises(CfError):
        records.check_ttl(30)
    rec = {
        "name": "a1.sandbox.test",
        "type": "A",
        "content": "10.77.0.2",
        "proxied": False,
        "comment": "Owned by fatctl",
        "tags": ["owner:fatctl", "agent:a1"],
    }
    filters, tags = records.build_filters({"comment.contains": "owned"}, [("", "owner:fatctl")])
    assert records.matches(rec, filters, tags, True, True)
    _, absent = records.build_filters({}, [("absent", "owner")])
    assert not records.matches(rec, [], absent, True, True)
