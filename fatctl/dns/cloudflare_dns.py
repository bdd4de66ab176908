"""Idempotent A/AAAA records for `<agent>.<domain>` in Cloudflare, owned by their comment.

Each run lists the name's records once (A and AAAA come back together), adopts ours (the exact
ownership comment of `records.py`, or the tags of the older scheme), creates what is missing,
fixes what drifted, removes duplicates of ours, and refuses to touch a record someone else made.
DNS-only by default; `proxied=True` puts Cloudflare in front. The zone id comes from the
`cloudflare_zone_id` setting, else from a hint (the zone of records fatctl already keeps in its
database), else it is looked up once per process: the domain's own name first, then each
parent (`agents.example.com` lives in the zone `example.com`). So a fresh agent costs one list
and two creates. Records carry tags too only where the zone's plan is known to have them (the
lookup says so); a Free zone refuses tags.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from fatctl.config import Settings
from fatctl.dns.cf_client import Cf
from fatctl.dns.records import (
    RecordChange,
    WantedRecord,
    comment_owner,
    decide,
    is_owned,
    wanted_records,
)
from fatctl.domain import ChangeSink
from fatctl.domain import ignore_change as _ignore
from fatctl.errors import CloudError, ConfigError
from fatctl.pacing.retry import RateBudget
from fatctl.pacing.timing import Timing

# (endpoint, token, domain) -> zone id: a zone's id never changes while the zone exists, and
# the token (kept wrapped) tells accounts (and sandbox emulators on a reused port) apart.
_ZONES: dict[tuple[str, object, str], str] = {}
# zone id -> whether its plan has record tags, for the zones this process looked up.
_TAGGABLE: dict[str, bool] = {}


def zone_candidates(domain: str) -> list[str]:
    """The domain, then each parent down to two labels: where its zone may be, nearest first."""
    labels = domain.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(max(1, len(labels) - 1))]


class CloudflareDns:
    def __init__(
        self,
        settings: Settings,
        *,
        timing: Timing | None = None,
        on_change: ChangeSink | None = None,
        budget: RateBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        zone_hint: str = "",
    ) -> None:
        if not settings.domain:
            raise ConfigError(
                "missing setting domain: set FATCTL_DOMAIN (agents live at <agent>.<domain>)"
            )
        self.domain = settings.domain
        self.cf = Cf(settings, timing, budget=budget, sleep=sleep)
        self.emit = on_change or _ignore
        self._zone: str | None = settings.cloudflare_zone_id or None
        self._hint = "" if self._zone else zone_hint

    def zone_id(self) -> str:
        if self._zone is None:
            key = (self.cf.settings.cloudflare_base_url, self.cf.settings.cloudflare_api_token,
                   self.domain)  # fmt: skip
            self._zone = _ZONES.get(key) or self._hint or None
            if self._zone is None:
                self._zone = _ZONES[key] = self._find_zone()
        return self._zone

    def _find_zone(self) -> str:
        for name in zone_candidates(self.domain):
            # Only the first page: iterating the paginator would fetch an empty second page.
            page = self.cf.call(
                "find zone",
                partial(self.cf.client.zones.list, name=name),
            )
            zones = [z for z in page.result if z.name == name]
            if zones:
                plan = zones[0].plan
                _TAGGABLE[str(zones[0].id)] = bool(plan and plan.legacy_id not in (None, "free"))
                return str(zones[0].id)
        # The cloud's answer, found only by asking (a provision may have its server by then):
        # a failure to rerun after the fix (exit 1), not a refusal of input.
        raise CloudError(
            f"Cloudflare has no zone for {self.domain} (nor any parent) for this token",
            code="no_zone",
            hint="check FATCTL_DOMAIN and the token's zones",
        )

    def tags_allowed(self) -> bool:
        """Whether the zone's plan has record tags, as far as this process knows (Free: no)."""
        return _TAGGABLE.get(self.zone_id(), False)

    def _existing(self, fqdn: str) -> dict[str, list[dict[str, Any]]]:
        """The name's A and AAAA records by type, oldest first, from one listing."""
        try:
            found = self._list(fqdn)
        except CloudError as exc:
            # A hinted zone may be gone (zone re-created, another account): look it up instead.
            if not (self._hint and self._zone == self._hint and exc.code in ("400", "404")):
                raise
            self._hint, self._zone = "", None
            found = self._list(fqdn)
        found.sort(key=lambda r: str(r.get("created_on", "")))
        return {t: [r for r in found if r.get("type") == t] for t in ("A", "AAAA")}

    def _list(self, fqdn: str) -> list[dict[str, Any]]:
        """The records of exactly `fqdn`: an answer that ignored the name filter must not make
        another name's records look like this one's (to refuse over, or to delete)."""
        records = self.cf.client.dns.records
        listing = partial(records.list, zone_id=self.zone_id(), name={"exact": fqdn})
        found = self.cf.call(f"list {fqdn}", lambda: [r.to_dict() for r in listing()])
        return [r for r in found if str(r.get("name", "")).lower() == fqdn.lower()]

    def _write(self, wanted: WantedRecord, record_id: str, keep_tags: Sequence[str] = ()) -> None:
        records = self.cf.client.dns.records
        body: dict[str, Any] = {
            "zone_id": self.zone_id(),
            "name": wanted.name,
            "type": wanted.type,
            "content": wanted.content,
            "ttl": wanted.ttl,
            "proxied": wanted.proxied,
            "comment": wanted.comment,
        }
        # A Free zone refuses any tag; a record that has tags shows its zone takes them (an update
        # is a PUT: tags it does not name would be dropped).
        tags = list(dict.fromkeys([*wanted.tags, *keep_tags]))
        if tags:
            body["tags"] = tags
        if record_id:
            self.cf.call(
                f"update {wanted.type} {wanted.name}", partial(records.update, record_id, **body)
            )
        else:
            create = partial(records.create, **body)
            self.cf.call(f"create {wanted.type} {wanted.name}", create, self._made(wanted))

    def _made(self, wanted: WantedRecord) -> Callable[[], dict[str, Any] | None]:
        """For a create retried after a lost answer: the record if the lost call made it."""

        def find() -> dict[str, Any] | None:
            found = self._list(wanted.name)
            for r in found:
                mine = comment_owner(r.get("comment")) == comment_owner(wanted.comment)
                if mine and (r.get("type"), r.get("content")) == (wanted.type, wanted.content):
                    return r
            return None

        return find

    def _delete(self, record_id: str, what: str) -> None:
        records = self.cf.client.dns.records
        delete = partial(records.delete, record_id, zone_id=self.zone_id())
        try:
            self.cf.call(f"delete {what}", delete)
        except CloudError as exc:
            if exc.code != "404":  # gone already (say, a lost answer's retry): what we wanted
                raise

    def upsert(
        self, agent: str, ipv4: str, ipv6: str, *, proxied: bool = False
    ) -> list[RecordChange]:
        """Make A/AAAA `<agent>.<domain>` point at the box; returns what was done per record."""
        changes = []
        present = self._existing(f"{agent}.{self.domain}")
        tags = self.tags_allowed()
        for wanted in wanted_records(agent, self.domain, ipv4, ipv6, proxied=proxied, tags=tags):
            action, record_id, duplicates = decide(wanted, present[wanted.type], agent)
            for extra in duplicates:  # first, so the write cannot collide with one of them
                self._delete(extra, f"duplicate {wanted.type} {wanted.name}")
            if action != "same":
                kept = next((r for r in present[wanted.type] if str(r["id"]) == record_id), {})
                self._write(wanted, record_id, [str(t) for t in kept.get("tags") or ()])
            change = RecordChange(wanted.type, wanted.name, action, wanted.content)
            self.emit(change.as_change())
            changes.append(change)
        return changes

    def delete(self, agent: str) -> list[RecordChange]:
        """Remove our records for the agent (idempotent); records we do not own are left alone."""
        fqdn = f"{agent}.{self.domain}"
        changes = []
        for rtype, present in self._existing(fqdn).items():
            for record in present:
                if not is_owned(record, agent):
                    continue
                self._delete(str(record["id"]), f"{rtype} {fqdn}")
                change = RecordChange(rtype, fqdn, "delete", str(record.get("content", "")))
                self.emit(change.as_change())
                changes.append(change)
        return changes
