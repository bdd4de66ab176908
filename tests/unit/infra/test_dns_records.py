"""The pure DNS ownership decision: an exact, parseable comment on every plan, tags only where
the zone's plan has them, and records of the older tag scheme still recognised."""

from __future__ import annotations

import pytest

from fatctl.dns.records import (
    comment_owner,
    decide,
    is_owned,
    ownership_comment,
    record_owner,
    wanted_records,
)
from fatctl.errors import CloudError

TAGS = ["fatctl", "agent:alice"]


def test_wanted_records() -> None:
    a, aaaa = wanted_records("alice", "d.test", "192.0.2.1", "2001:db8::1", proxied=True)
    assert (aaaa.type, aaaa.content) == ("AAAA", "2001:db8::1")
    assert (a.type, a.name, a.content, a.proxied) == ("A", "alice.d.test", "192.0.2.1", True)
    assert [w.type for w in wanted_records("alice", "d.test", "192.0.2.1", "")] == ["A"]


def test_free_zones_get_no_tags_and_paid_zones_get_ours() -> None:
    """Cloudflare Free zones refuse any tag: `{"code":1004,"message":"DNS Validation Error",
    "error_chain":[{"code":9300,"message":"DNS record has 1 tags, exceeding the quota of 0."}]}`
    (kubernetes-sigs/external-dns#3706). Old code always sent `fatctl`, `agent:<name>`."""
    (free,) = wanted_records("alice", "d.test", "192.0.2.1", "")
    (paid,) = wanted_records("alice", "d.test", "192.0.2.1", "", tags=True)
    assert free.tags == () and paid.tags == ("fatctl", "agent:alice")
    assert free.comment == paid.comment == ownership_comment("alice")


def test_the_comment_is_exact_parseable_and_fits_a_free_zone() -> None:
    """A Free zone allows comments of 100 characters; names are at most 40 (agent_name)."""
    longest = "a" * 40
    assert len(ownership_comment(longest)) <= 100
    assert comment_owner(ownership_comment("alice")) == "alice"
    assert comment_owner(ownership_comment(longest)) == longest
    assert comment_owner(ownership_comment("alice") + " ") == ""  # exact, not "contains"
    assert comment_owner("x" + ownership_comment("alice")) == ""
    assert comment_owner("managed by fatctl for agent alice; changes are overwritten") == ""
    assert comment_owner(None) == ""


def test_ownership_by_comment_and_by_the_old_tags() -> None:
    assert is_owned({"comment": ownership_comment("alice"), "tags": []}, "alice")
    assert not is_owned({"comment": ownership_comment("bob")}, "alice")
    # A fleet already running has records owned by the two tags alone.
    assert is_owned({"comment": "whatever", "tags": TAGS}, "alice")
    assert record_owner({"tags": ["FATCTL", "agent:alice"]}) == "alice"
    assert not is_owned({"tags": ["fatctl", "agent:bob"]}, "alice")
    assert not is_owned({"tags": ["agent:alice"]}, "alice")  # no `fatctl` tag: not ours
    assert not is_owned({"comment": "fatctl agent=alice"}, "alice")  # a person's lookalike


def test_decide() -> None:
    (want,) = wanted_records("alice", "d.test", "192.0.2.1", "")
    assert decide(want, [], "alice") == ("create", "", [])
    right = {"id": "r1", "content": "192.0.2.1", "proxied": False, "comment": want.comment}
    stale = {"id": "r0", "content": "192.0.2.9", "proxied": False, "comment": want.comment}
    assert decide(want, [stale, right], "alice") == ("same", "r1", ["r0"])
    assert decide(want, [stale], "alice") == ("update", "r0", [])
    with pytest.raises(CloudError, match="not owned by fatctl"):
        decide(want, [right, {"id": "x", "content": "1.1.1.1", "tags": []}], "alice")


def test_an_old_tagged_record_is_adopted_and_moved_to_the_comment() -> None:
    (want,) = wanted_records("alice", "d.test", "192.0.2.1", "")
    old = {"id": "r9", "content": "192.0.2.1", "proxied": False, "tags": TAGS,
           "comment": "managed by fatctl for agent alice; changes are overwritten"}  # fmt: skip
    assert decide(want, [old], "alice") == ("update", "r9", [])
    (paid,) = wanted_records("alice", "d.test", "192.0.2.1", "", tags=True)
    untagged = {"id": "r1", "content": "192.0.2.1", "proxied": False, "comment": paid.comment}
    assert decide(paid, [untagged], "alice") == ("update", "r1", [])  # gets its tags back
