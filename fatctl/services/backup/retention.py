"""Which state backups a prune deletes: a pure rule over object names and the current time.

Objects live under the agent's `backups/` prefix as pairs, `<stamp>-<kind>.tar.gz.age` (the
encrypted archive) and `<stamp>-<kind>.json` (its sidecar, uploaded last: the commit marker),
`<stamp>` being the UTC time `%Y%m%dT%H%M%SZ` and `<kind>` `scheduled`, `manual` or
`pre-<operation>`. Times come from the names, never from object metadata, so the rule and the
box's mirror of it (`fat-backup prune-plan`, jq in `templates/scripts/fat-backup.sh.j2`) read
the same input.

The rule: the newest complete pair is always kept. Scheduled pairs, newest first, are kept
when they are the newest of a UTC day among the first `daily` days that have one, or of an ISO
week among the first `weekly` weeks (restic's keep-daily/keep-weekly: a box that was off for a
month still keeps its last backups). Any other kind is kept for `pre_days` days. A lone half of
a pair is an upload in progress for a day, a leftover after that. Names that do not parse are
never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud_init import layout as L

ARCHIVE_SUFFIX = ".tar.gz.age"
SIDECAR_SUFFIX = ".json"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
KIND_PATTERN = r"[a-z][a-z0-9-]{0,23}"  # fits backups.kind, VARCHAR(24)
_NAME = re.compile(
    rf"^(?P<stamp>[0-9]{{8}}T[0-9]{{6}}Z)-(?P<kind>{KIND_PATTERN})"
    rf"(?P<ext>{re.escape(ARCHIVE_SUFFIX)}|{re.escape(SIDECAR_SUFFIX)})$"
)
UNPAIRED_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    daily: int = L.BACKUP_KEEP_DAILY
    weekly: int = L.BACKUP_KEEP_WEEKLY
    pre_days: int = L.BACKUP_KEEP_PRE_DAYS


@dataclass(frozen=True)
class BackupObject:
    """One object of the prefix, read from its name."""

    name: str
    backup: str  # `<stamp>-<kind>`: what `fat-backup restore|verify` takes
    at: datetime
    kind: str
    is_archive: bool


def parse_object(name: str) -> BackupObject | None:
    """The backup an object name belongs to, or None for a name that is not one of ours."""
    found = _NAME.match(name)
    if found is None:
        return None
    try:
        at = datetime.strptime(found["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # 20261399T..., a date that does not exist
        return None
    return BackupObject(name, f"{found['stamp']}-{found['kind']}", at, found["kind"],
                        found["ext"] == ARCHIVE_SUFFIX)  # fmt: skip


def _iso_week(at: datetime) -> tuple[int, int]:
    year, week, _ = at.isocalendar()
    return year, week


def to_delete(names: Iterable[str], now: datetime, policy: Policy = Policy()) -> list[str]:
    """The object names a prune deletes, sorted."""
    groups: dict[str, list[BackupObject]] = {}
    for obj in filter(None, map(parse_object, names)):
        groups.setdefault(obj.backup, []).append(obj)
    complete = {
        b: objs for b, objs in groups.items() if {o.is_archive for o in objs} == {True, False}
    }
    doomed: list[str] = []
    for objs in groups.values():
        if objs[0].backup not in complete and now - objs[0].at >= UNPAIRED_GRACE:
            doomed += [o.name for o in objs]
    pairs = sorted(complete, key=lambda b: (complete[b][0].at, b), reverse=True)
    keep = set(pairs[:1])
    days: set[object] = set()
    weeks: set[object] = set()
    for backup in pairs:
        at, kind = complete[backup][0].at, complete[backup][0].kind
        if kind != "scheduled":
            if now - at < timedelta(days=policy.pre_days):
                keep.add(backup)
            continue
        if at.date() not in days and len(days) < policy.daily:
            days.add(at.date())
            keep.add(backup)
        if _iso_week(at) not in weeks and len(weeks) < policy.weekly:
            weeks.add(_iso_week(at))
            keep.add(backup)
    doomed += [o.name for b in pairs if b not in keep for o in complete[b]]
    return sorted(set(doomed))
