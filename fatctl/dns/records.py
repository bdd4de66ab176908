"""The DNS records fatctl owns for an agent, and the pure decision of what to do about the
records that already exist.

Ownership is written in the record's `comment`, exactly and parseably
(`fatctl agent=<name>; managed by fatctl, edits are overwritten`): comments exist on every
Cloudflare plan, where tags are a paid-plan feature (a Free zone refuses a record carrying any:
code 9300 "DNS record has 1 tags, exceeding the quota of 0"). Where the zone's plan has tags the
records carry them too (`fatctl`, `agent:<name>`) for the dashboard's filters. Records made
before the comment scheme, owned by those two tags alone, are still recognised as ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fatctl.domain import ResourceChange
from fatctl.errors import CloudError

OWNER_TAG = "fatctl"
COMMENT_PREFIX = "fatctl agent="  # what listings filter on (`comment.startswith`)
_COMMENT_SUFFIX = "; managed by fatctl, edits are overwritten"
# An agent name is 3 to 40 of [a-z0-9-] (validation.agent_name): the comment stays within the
# 100 characters a Free zone allows.
_COMMENT = re.compile(re.escape(COMMENT_PREFIX) + r"([a-z0-9-]{1,63})" + re.escape(_COMMENT_SUFFIX))


def agent_tag(agent: str) -> str:
    return f"agent:{agent}"


def ownership_comment(agent: str) -> str:
    return f"{COMMENT_PREFIX}{agent}{_COMMENT_SUFFIX}"


def comment_owner(comment: object) -> str:
    """The agent an ownership comment names, "" unless the comment is exactly one of ours."""
    found = _COMMENT.fullmatch(comment) if isinstance(comment, str) else None
    return found.group(1) if found else ""


def tag_owner(record: Mapping[str, Any]) -> str:
    """The agent of a record owned by the old tag scheme (`fatctl` and `agent:<name>`), or ""."""
    tags = [str(t) for t in record.get("tags") or []]
    if OWNER_TAG not in {t.lower() for t in tags}:
        return ""
    names = {v for k, sep, v in (t.partition(":") for t in tags) if sep and k.lower() == "agent"}
    return names.pop() if len(names) == 1 else ""


def record_owner(record: Mapping[str, Any]) -> str:
    """The agent that owns a record: by its comment, else by the old tags; "" if none does."""
    return comment_owner(record.get("comment")) or tag_owner(record)


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
    agent: str, domain: str, ipv4: str, ipv6: str, *, proxied: bool = False, tags: bool = False
) -> list[WantedRecord]:
    """A and AAAA for `<agent>.<domain>`; a missing address means no record of that type.
    `tags`: the zone's plan has record tags (not Free), so the records carry ours too."""
    fqdn = f"{agent}.{domain}"
    tags_ = (OWNER_TAG, agent_tag(agent)) if tags else ()
    out = []
    for rtype, content in (("A", ipv4), ("AAAA", ipv6)):
        if content:
            out.append(WantedRecord(rtype, fqdn, content, proxied, ownership_comment(agent), tags_))
    return out


def is_owned(record: Mapping[str, Any], agent: str) -> bool:
    return record_owner(record) == agent


def decide(
    wanted: WantedRecord, existing: Sequence[Mapping[str, Any]], agent: str
) -> tuple[str, str, list[str]]:
    """(action, id of the record to keep or "", ids of our duplicates to delete).

    Records of the same name and type that are not the agent's (by comment or old tags) belong
    to someone else: refuse to touch them rather than silently take over a name a person set up
    by hand. Of our own records the one already right is kept (so fixing it never collides with
    an identical duplicate); one of the old tag scheme is updated to the comment (and, where
    the zone has tags, keeps them).
    """
    foreign = [r for r in existing if not is_owned(r, agent)]
    if foreign:
        raise CloudError(
            f"DNS {wanted.type} {wanted.name} exists and is not owned by fatctl (its comment is "
            f"not '{wanted.comment}'); refusing to overwrite it",
            code="dns_not_owned",
            hint="delete the record or set exactly that comment to hand it over",
        )
    if not existing:
        return "create", "", []
    keep = next((r for r in existing if r.get("content") == wanted.content), existing[0])
    others = [str(r["id"]) for r in existing if r is not keep]
    current = (keep.get("content"), bool(keep.get("proxied")), keep.get("comment"),
               set(keep.get("tags") or ()) >= set(wanted.tags))  # fmt: skip
    right = (wanted.content, wanted.proxied, wanted.comment, True)
    action = "same" if current == right else "update"
    return action, str(keep["id"]), others
