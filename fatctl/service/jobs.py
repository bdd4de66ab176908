"""What `fatctl jobs` shows: the schedules and recent workflows, read from DBOS's tables.

Read through `DBOSClient`, which only connects to the system database (it launches no executor,
dequeues nothing and runs no migration), so a `fatctl jobs list` beside a running server takes
no work from it. Every value is plain data (str, int, None) for the CLI's table and JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fatctl.errors import StateError
from fatctl.service.runtime import system_database_url

if TYPE_CHECKING:
    from fatctl.config import Settings

APP_NAME = "fatctl"  # runtime.running's DBOSConfig name: the schedules' owner
ERROR_CHARS = 200


@contextmanager
def _client(settings: Settings) -> Iterator[Any]:
    from dbos import DBOSClient
    from dbos._serialization import DBOSPortableJSONSerializer

    client = DBOSClient(system_database_url=system_database_url(settings.database_url),
                        serializer=DBOSPortableJSONSerializer(), application_name=APP_NAME,
                        retry_connection_errors=False)  # fmt: skip
    try:
        yield client
    finally:
        client.destroy()


def _tables_missing(exc: Exception) -> bool:
    text = str(exc).lower()
    return "no such table" in text or "does not exist" in text


def _iso_ms(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat()


def _error_line(error: object) -> str:
    if error is None:
        return ""
    text = str(getattr(error, "message", None) or error).replace("\n", " ").strip()
    return text[:ERROR_CHARS]


def _agent_of(status: Any) -> str:
    """The agent a workflow works on: its partition (the agents queue) or its first input."""
    if status.queue_partition_key:
        return str(status.queue_partition_key)
    args = list((status.input or {}).get("args") or [])
    first = args[0] if args else None
    if isinstance(first, dict):
        return str(first.get("name") or "")
    return first if isinstance(first, str) else ""


def workflow_row(status: Any) -> dict[str, Any]:
    return {
        "id": status.workflow_id,
        "name": status.name,
        "status": str(status.status),
        "agent": _agent_of(status),
        "queue": status.queue_name or "",
        "started": _iso_ms(status.created_at),
        "completed": _iso_ms(getattr(status, "completed_at", None)),
        "error": _error_line(status.error),
    }


def _last_result(status: Any) -> str:
    if status is None:
        return ""
    output = status.output if isinstance(status.output, dict) else {}
    if str(status.status) != "SUCCESS":
        return str(status.status) + (f": {_error_line(status.error)}" if status.error else "")
    shown = {k: v for k, v in output.items() if isinstance(v, int) and not isinstance(v, bool)}
    return ", ".join([str(output.get("result", "ok"))] + [f"{k}={v}" for k, v in shown.items()])


def schedule_rows(client: Any, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Every schedule fatctl knows: as applied in the database, else as configured."""
    from fatctl.service.schedules import BY_NAME, configured, next_fire

    applied = {
        s["schedule_name"]: s for s in client.list_schedules() if s["schedule_name"] in BY_NAME
    }
    rows = []
    for name, cron in configured(settings).items():
        row = applied.get(name)
        cron_now = str(row["schedule"]) if row else cron
        status = str(row["status"]) if row else ("off" if cron is None else "not applied")
        wf_name = BY_NAME[name].workflow
        (last,) = client.list_workflows(name=wf_name, limit=1, sort_desc=True,
                                        load_input=False) or [None]  # fmt: skip
        rows.append({
            "name": name, "cron": cron_now or "off", "status": status,
            "next_run": next_fire(cron_now, now).isoformat() if cron_now else None,
            "last_run": _iso_ms(last.created_at) if last else None,
            "last_result": _last_result(last),
        })  # fmt: skip
    return rows


def overview(settings: Settings, now: datetime, limit: int) -> dict[str, Any]:
    """The schedules and the `limit` most recent workflows, newest first."""
    from fatctl.service.schedules import configured

    configured(settings)  # a bad FATCTL_SCHEDULE_* is bad input here too, before any I/O
    with _client(settings) as client:
        try:
            schedules = schedule_rows(client, settings, now)
            recent = client.list_workflows(limit=limit, sort_desc=True, load_output=False)
        except Exception as exc:
            if not _tables_missing(exc):
                raise
            raise StateError("no workflow tables in this database yet: `fatctl serve` has "
                             "not run on it") from None  # fmt: skip
    return {"schedules": schedules, "workflows": [workflow_row(s) for s in recent]}


def detail(settings: Settings, workflow_id: str) -> dict[str, Any] | None:
    """One workflow with its steps; None when the id is unknown."""
    with _client(settings) as client:
        try:
            (found,) = client.list_workflows(workflow_ids=[workflow_id]) or [None]
            steps = client.list_workflow_steps(workflow_id) if found else []
        except Exception as exc:
            if not _tables_missing(exc):
                raise
            return None
    if found is None:
        return None
    return {**workflow_row(found), "output": found.output,
            "steps": [{"step": s["function_id"], "name": s["function_name"],
                       "error": _error_line(s.get("error"))} for s in steps]}  # fmt: skip
