"""The pure DNS ownership decision."""

from __future__ import annotations

import pytest

from fatctl.dns.records import decide, is_owned, ownership_comment, wanted_records
from fatctl.errors import CloudError

TAGS = ["fatctl", "agent:alice"]


def test_wanted_records() -> None:
    a, aaaa = wanted_records("alice", "d.test", "192.0.2.1", "2001:db8::1", proxied=True)
    assert (a.type, a.name, a.content, a.proxied) == ("A", "alice.d.test", "192.0.2.1", True)
    assert aaaa.tags == ("fatctl", "agent:alice") and len(ownership_comment("x" * 200)) == 100
    assert [w.type for w in wanted_records("alice", "d.test", "192.0.2.1", "")] == ["A"]


def test_decide() -> None:
    (want,) = wanted_records("alice", "d.test", "192.0.2.1", "")
    assert decide(want, [], "alice") == ("create", "", [])
    right = {
        "id": "r1",
        "content": "192.0.2.1",
        "proxied": False,
        "comment": want.comment,
        "tags": TAGS,
    }
    stale = {
        "id": "r0",
        "content": "192.0.2.9",
        "proxied": False,
        "comment": want.comment,
        "tags": TAGS,
    }
    assert decide(want, [stale, right], "alice") == ("same", "r1", ["r0"])
    assert decide(want, [stale], "alice") == ("update", "r0", [])
    assert not is_owned({"tags": ["fatctl", "agent:bob"]}, "alice")
    with pytest.raises(CloudError, match="not owned by fatctl"):
        decide(want, [right, {"id": "x", "content": "1.1.1.1", "tags": []}], "alice")
