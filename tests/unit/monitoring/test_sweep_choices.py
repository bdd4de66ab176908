"""The sweep's pure choices: which healthy boxes are asked for their backup, which reported
backup is recorded, what a row says, and how a reason is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fatctl.monitoring.probe import ProbeResult
from fatctl.monitoring.store import ERROR_MAX, backup_kind, clip
from fatctl.monitoring.sweep import BACKUP_LOOK_AFTER, Box, backup_looks, probe_row, reported_backup
from fatctl.services.fleet.status import BoxHealth

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def box(name: str, newest: datetime | None, backups: bool = True) -> Box:
    return Box(1, name, "192.0.2.1", "", newest, backups)


def test_backup_looks_pick_unknown_first_then_oldest_within_the_limit() -> None:
    boxes = [
        box("fresh", NOW - timedelta(hours=1)),
        box("old", NOW - BACKUP_LOOK_AFTER - timedelta(hours=5)),
        box("older", NOW - BACKUP_LOOK_AFTER - timedelta(hours=9)),
        box("never", None),
        box("no-backups", None, backups=False),
        box("failing", None),
    ]
    assert backup_looks(boxes, NOW, {"failing"}, 10) == ["never", "older", "old"]
    assert backup_looks(boxes, NOW, {"failing"}, 2) == ["never", "older"]


def health(backup: object) -> BoxHealth:
    return BoxHealth("healthy 1", "none", "ok", {"healthy": True, "backup": backup})


def test_only_a_newer_successful_backup_is_recorded() -> None:
    key = "backups/20261207T041000Z-scheduled.tar.gz.age"
    fresh = {"at": "2026-12-07T04:10:00Z", "object": key, "size_bytes": 10, "ok": True}
    seen = reported_backup(box("a", None), health(fresh))
    assert seen is not None and seen.at == datetime(2026, 12, 7, 4, 10, tzinfo=UTC)
    assert seen.size_bytes == 10 and backup_kind(seen.object_key) == "scheduled"
    assert reported_backup(box("a", seen.at), health(fresh)) is None  # known already
    assert reported_backup(box("a", None), health({**fresh, "ok": False})) is None  # it failed
    assert reported_backup(box("a", None), health(None)) is None  # none yet
    assert reported_backup(box("a", None), health({**fresh, "at": "yesterday"})) is None
    assert reported_backup(box("a", None), BoxHealth("unreachable: x", "-", "-")) is None


def test_rows_say_how_the_box_was_seen() -> None:
    ok = ProbeResult("a", True, 200, 0.0125, "")
    failed = ProbeResult("a", False, None, 3.0, "connection to 192.0.2.1 refused")
    assert probe_row(box("a", None), ok, None, NOW).via == "https"
    row = probe_row(box("a", None), failed, BoxHealth("unhealthy: gateway down", "-", "ok"), NOW)
    assert (row.ok, row.via, row.status_code, row.latency_ms) == (False, "ssh", None, 3000.0)
    assert row.error == "connection to 192.0.2.1 refused; fat-health: unhealthy: gateway down"


def test_reasons_are_stored_on_one_bounded_line() -> None:
    assert clip(None) is None and clip("") is None
    assert clip("a\nb  c") == "a b c"
    long = clip("x" * 500)
    assert long is not None and len(long) == ERROR_MAX and long.endswith("...")
    assert backup_kind("backups/20261207T041000Z-pre-destroy.tar.gz.age") == "pre-destroy"
    assert backup_kind("odd") == "scheduled"
