"""The probe history in the state database (`probe_results`, migration 0010).

`write_sweep` keeps one sweep's rows, the backups the boxes reported, and prunes each agent to
its newest `keep` rows (and its current incident: see `_PRUNE`), all in one transaction. It is
idempotent: a sweep is one DBOS step, so a
crash after the commit and before the step's checkpoint runs it again with the same instant,
and rows already stored for that (agent, instant, via) are not inserted twice (one failure
counted twice would bring `down_after` forward). A backup already known keeps what its row
says: `take_backup` records its sha256 and runtime version, which a box's report lacks. A
scrape or `fatctl status` reading at the same time sees the sweep before or after, never half
of it. `stored_history` reads the recent rows back as a `history.ProbeHistory` (one query,
plain DB-API like the rest of the metrics), so the collector and `fatctl status` judge
down/flapping/escalate the same way the sweep does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fatctl.monitoring.history import MemoryHistoryStore, ProbeHistory
from fatctl.monitoring.metrics import BoxFigures
from fatctl.monitoring.probe import ProbeResult
from fatctl.state.db import session_scope
from fatctl.state.rawdb import connect, fetch_dicts

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# Rows kept per agent: at one sweep every 5 minutes, the last 50 minutes, more than any
# `down_after`/`flap_after` judgement needs.
KEEP_PER_AGENT = 10
ERROR_MAX = 200  # the column's length; reasons are one line, and never carry a secret
VIAS = ("https", "ssh")


@dataclass(frozen=True)
class ProbeRow:
    """One row of `probe_results`, ready to insert."""

    agent_pk: int
    at: datetime
    ok: bool
    via: str  # https: the /readyz answer; ssh: it failed, and fat-health was asked too
    status_code: int | None
    latency_ms: float | None
    error: str | None
    box: BoxFigures | None = None  # what fat-health reported, when the sweep asked the box


@dataclass(frozen=True)
class SeenBackup:
    """A backup a box reported through fat-health (its `backup` object) that fatctl records in
    `backups`, so backup age counts the boxes' own timer runs too."""

    agent_pk: int
    object_key: str
    at: datetime
    size_bytes: int


def clip(text: str | None) -> str | None:
    """An error reason as stored: one line, at most the column's length."""
    if not text:
        return None
    line = " ".join(text.split())
    return line if len(line) <= ERROR_MAX else line[: ERROR_MAX - 3] + "..."


# Everything past an agent's newest `keep` rows, in one statement on both engines (window
# functions: SQLite >= 3.25, PostgreSQL), except what marks the current incident: the newest ok
# probe and every failure after it, up to `keep_run` rows. Repair reads an incident's start
# off its first failure (`services.repair.ladder`): an incident outlasting `keep` sweeps (a
# restart and a reboot, each waiting out a 15-minute gate) would otherwise lose its start and,
# with it, the rungs already tried (seen: a second reboot where the rebuild was due).
_PRUNE = """
DELETE FROM probe_results WHERE id IN (
  SELECT id FROM (
    SELECT id, ok, at,
      ROW_NUMBER() OVER (PARTITION BY agent_pk ORDER BY at DESC, id DESC) AS n,
      MAX(CASE WHEN ok THEN at END) OVER (PARTITION BY agent_pk) AS last_ok
    FROM probe_results
  ) ranked
  WHERE n > :keep
    AND NOT (ok AND at = last_ok)
    AND NOT (NOT ok AND (last_ok IS NULL OR at > last_ok) AND n <= :keep_run)
)
"""
# The longest failing run kept whole: about 3.5 days of 5-minute sweeps, far past any ladder.
KEEP_RUN = 1000


def write_sweep(
    db: Engine,
    rows: Sequence[ProbeRow],
    backups: Sequence[SeenBackup] = (),
    *,
    keep: int = KEEP_PER_AGENT,
) -> None:
    """Insert `rows`, record `backups`, prune to `keep` per agent: one transaction."""
    from sqlalchemy import insert, text

    from fatctl.state import repo
    from fatctl.state.models import Agent, Backup
    from fatctl.state.models import ProbeResult as ProbeRecord

    if keep < 1:
        raise ValueError("keep at least one probe result per agent")
    with session_scope(db) as session:
        fresh = _not_stored(session, rows)
        if fresh:
            session.execute(
                insert(ProbeRecord),
                [{"agent_pk": r.agent_pk, "at": utc(r.at), "ok": r.ok, "via": r.via,
                  "status_code": r.status_code, "latency_ms": r.latency_ms,
                  "error": clip(r.error), **figure_columns(r.box)} for r in fresh],
            )  # fmt: skip
        for seen in backups:
            agent = session.get(Agent, seen.agent_pk)
            if agent is None or _known_backup(session, seen):
                continue
            repo.record_backup(session, agent, Backup(
                agent_pk=seen.agent_pk, object_key=seen.object_key,
                kind=backup_kind(seen.object_key), created_at=utc(seen.at),
                size_bytes=seen.size_bytes,
            ))  # fmt: skip
        session.execute(text(_PRUNE), {"keep": keep, "keep_run": max(keep, KEEP_RUN)})


CHANNELS_MAX = 300  # the column's length


def figure_columns(box: BoxFigures | None) -> dict[str, Any]:
    """A row's fat-health columns (migration 0014); all NULL when the box was not asked. A
    channel map too long for its column is left out rather than cut into invalid JSON."""
    if box is None:
        return {}
    channels = json.dumps(dict(sorted(box.channels.items())), separators=(",", ":"))
    return {"disk_free_mb": box.disk_free_mb, "mem_available_mb": box.mem_available_mb,
            "gateway_restarts": box.gateway_restarts,
            "gateway_memory_bytes": box.gateway_memory_bytes,
            "gateway_memory_peak_bytes": box.gateway_memory_peak_bytes,
            "channels": channels if len(channels) <= CHANNELS_MAX else None}  # fmt: skip


# Each running agent's newest row that carries fat-health's figures (within the kept rows).
_FIGURES = """
SELECT a.name, p.disk_free_mb, p.mem_available_mb, p.gateway_restarts, p.gateway_memory_bytes,
       p.gateway_memory_peak_bytes, p.channels
FROM probe_results p JOIN agents a ON a.id = p.agent_pk
WHERE p.id IN (SELECT MAX(id) FROM probe_results WHERE disk_free_mb IS NOT NULL
               GROUP BY agent_pk) {where}
"""


def stored_box_figures(url: str, *, states: Sequence[str] = ()) -> dict[str, BoxFigures]:
    """Per agent (in one of `states`, or all), what fat-health last reported to a sweep:
    only the boxes the sweeps asked over SSH have any."""
    where = f"AND a.state IN ({_marks(states)})" if states else ""
    with connect(url) as conn:
        rows = fetch_dicts(conn, _FIGURES.format(where=where), tuple(states))
    found = {}
    for row in rows:
        try:
            channels = json.loads(row["channels"]) if row["channels"] else {}
        except ValueError:
            channels = {}
        found[row["name"]] = BoxFigures(
            row["disk_free_mb"], row["mem_available_mb"], row["gateway_restarts"],
            row["gateway_memory_bytes"], row["gateway_memory_peak_bytes"],
            channels if isinstance(channels, dict) else {},
        )  # fmt: skip
    return found


def _not_stored(session: Any, rows: Sequence[ProbeRow]) -> list[ProbeRow]:
    """`rows` without those already stored for the same agent, instant and via (a replayed
    sweep's), read in the writing transaction."""
    from sqlmodel import col, select

    from fatctl.state.models import ProbeResult as ProbeRecord

    if not rows:
        return []
    instants = sorted({utc(r.at) for r in rows})
    query = select(ProbeRecord.agent_pk, ProbeRecord.at, ProbeRecord.via).where(
        col(ProbeRecord.agent_pk).in_(sorted({r.agent_pk for r in rows})),
        col(ProbeRecord.at).in_(instants),
    )
    stored = {(pk, _when(at), via) for pk, at, via in session.exec(query).all()}
    return [r for r in rows if (r.agent_pk, utc(r.at), r.via) not in stored]


def _known_backup(session: Any, seen: SeenBackup) -> bool:
    from sqlmodel import select

    from fatctl.state.models import Backup

    mine = (Backup.agent_pk == seen.agent_pk) & (Backup.object_key == seen.object_key)
    return session.exec(select(Backup.id).where(mine)).first() is not None


def backup_kind(object_key: str) -> str:
    """The kind fat-backup puts in the object's name: `<UTC stamp>-<kind>.tar.gz.age`."""
    name = object_key.rsplit("/", 1)[-1].split(".", 1)[0]
    _stamp, sep, kind = name.partition("-")
    return kind[:24] if sep and kind else "scheduled"


def utc(when: datetime) -> datetime:
    """In UTC, as every stored time is: SQLite keeps no offset (a non-UTC time would be read
    back wrong), and PostgreSQL hands times back in the session's zone."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _when(value: Any) -> datetime:
    """A database timestamp as an aware UTC datetime (SQLite hands back a naive ISO string)."""
    return utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


_RECENT = """
SELECT a.name, p.at, p.ok, p.via, p.status_code, p.latency_ms, p.error
FROM probe_results p JOIN agents a ON a.id = p.agent_pk
{where}
ORDER BY a.name, p.at, p.id
"""


def _marks(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


def recent_rows(
    url: str, agents: Sequence[str] = (), *, states: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The stored rows, oldest first per agent (all agents, those named, or those in one of
    `states`: a destroyed agent's last probes are no news)."""
    where = [f"a.name IN ({_marks(agents)})"] if agents else []
    where += [f"a.state IN ({_marks(states)})"] if states else []
    sql = _RECENT.format(where=f"WHERE {' AND '.join(where)}" if where else "")
    with connect(url) as conn:
        rows = fetch_dicts(conn, sql, (*agents, *states))
    for row in rows:
        row["at"] = _when(row["at"])
        row["ok"] = bool(row["ok"])
    return rows


def as_result(row: dict[str, Any]) -> ProbeResult:
    latency = row["latency_ms"]
    return ProbeResult(
        agent=row["name"],
        ok=row["ok"],
        status=row["status_code"],
        latency_s=(latency or 0.0) / 1000.0,
        reason=row["error"] or "",
        at=row["at"].timestamp(),
    )


def stored_history(
    url: str, *, keep: int = KEEP_PER_AGENT, states: Sequence[str] = (), **judgement: int
) -> ProbeHistory:
    """A `ProbeHistory` over the stored rows (a snapshot: one query, nothing kept open)."""
    history = ProbeHistory(MemoryHistoryStore(keep), keep=keep, **judgement)
    history.record(as_result(row) for row in recent_rows(url, states=states))
    return history
