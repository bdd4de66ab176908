"""The DNS records fatctl owns for an agent, and the pure decision of what to do about the
records that already exist. Ownership is marked twice on each record: a `comment` people see
in the dashboard and tags (`fatctl`, `agent:<name>`) that lookups filter on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fatctl.domain import ResourceChange
from fatctl.errors import CloudError

OWNER_TAG = "fatctl"


def agent_tag(agent: str) -> str:
    return f"agent:{agent}"


def ownership_comment(agent: str) -> str:
    return f"managed by fatctl for agent {agent}; changes are overwritten"[:100]


@dataclass(frozen=True)
class RecordChange:
    """What was done to one of an agent's records, with its parts kept apart (the state
    database mirrors type, name and content; plans and progress show `name`)."""

    type: str  # A or AAAA
    fqdn: str
    action: str  # create, update, same, delete
    content: str

    @property
    def name(self) -> str:
        return f"{self.type} {self.fqdn}"

    def as_change(self) -> ResourceChange:
        return ResourceChange("dns_record", self.name, self.action, self.content)


@dataclass(frozen=True)
class WantedRecord:
    type: str  # A or AAAA
    name: str  # fqdn
    content: str
    proxied: bool
    comment: str
    tags: tuple[str, ...]
    ttl: int = 1  # automatic


def wanted_records(
    agent: str, domain: str, ipv4: str, ipv6: str, *, proxied: bool = False
) -> list[WantedRecord]:
    """A and AAAA for `<agent>.<domain>`; a missing address means no record of that type."""
    fqdn = f"{agent}.{domain}"
    tags = (OWNER_TAG, agent_tag(agent))
    out = []
    for rtype, content in (("A", ipv4), ("AAAA", ipv6)):
        if content:
            out.append(WantedRecord(rtype, fqdn, content, proxied, ownership_comment(agent), tags))
    return out


def is_owned(record: Mapping[str, Any], agent: str) -> bool:
    tags = {str(t).lower() for t in record.get("tags") or []}
    return OWNER_TAG in tags and agent_tag(agent).lower() in tags


def decide(
    wanted: WantedRecord, existing: Sequence[Mapping[str, Any]], agent: str
) -> tuple[str, str, list[str]]:
    """(action, id of the record to keep or "", ids of our duplicates to delete).

    Records of the same name and type without our tags belong to someone else: refuse to touch
    them rather than silently take over a name a person set up by hand. Of our own records the
    one already right is kept (so fixing it never collides with an identical duplicate).
    """
    foreign = [r for r in existing if not is_owned(r, agent)]
    if foreign:
        raise CloudError(
            f"DNS {wanted.type} {wanted.name} exists and is not owned by fatctl (no tags "
            f"'{OWNER_TAG}', '{agent_tag(agent)}'); refusing to overwrite it",
            code="dns_not_owned",
            hint="delete the record or add those tags to hand it over",
        )
    if not existing:
        return "create", "", []
    keep = next((r for r in existing if r.get("content") == wanted.content), existing[0])
    others = [str(r["id"]) for r in existing if r is not keep]
    current = (keep.get("content"), bool(keep.get("proxied")), keep.get("comment"))
    action = "same" if current == (wanted.content, wanted.proxied, wanted.comment) else "update"
    return action, str(keep["id"]), others
