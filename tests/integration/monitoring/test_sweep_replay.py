"""Review 29, finding 8: the sweep's `agent.degraded` / `agent.recovered` transitions compared
this sweep's results with each agent's newest stored probe. A sweep replayed after its rows
were committed (the worker killed before DBOS recorded the step; `write_sweep` skips the rows
already stored) found its own rows there, and both transitions came out empty: the platform
never heard of the change. The previous probe is now the newest one stored before the sweep's
instant. On SQLite and PostgreSQL (the comparison of a bound time with the stored column)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fatctl.monitoring.probe import ProbeResult
from fatctl.monitoring.store import ProbeRow, write_sweep
from fatctl.monitoring.sweep import last_probes, transitions
from tests.integration.monitoring.test_sweep import T0, _ready_agents


def result(agent: str, ok: bool) -> ProbeResult:
    return ProbeResult(agent, ok, 200 if ok else 503, 0.01, "" if ok else "HTTP 503")


def row(pk: int, minutes: int, ok: bool) -> ProbeRow:
    return ProbeRow(pk, T0 + timedelta(minutes=minutes), ok, "https", 200 if ok else 503, 1.0,
                    None)  # fmt: skip


def test_a_replayed_sweep_still_sees_its_transitions(migrated_engine: Any) -> None:
    falls, heals = _ready_agents(migrated_engine, "falls", "heals")
    write_sweep(migrated_engine, [row(falls, 0, True), row(heals, 0, False)], [])
    now = T0 + timedelta(minutes=5)
    results = [result("falls", False), result("heals", True)]
    first = transitions(results, *last_probes(migrated_engine, now))
    assert first == (("falls",), ("heals",))

    # The sweep's rows committed, then the worker died: its replay reads the same history.
    write_sweep(migrated_engine, [row(falls, 5, False), row(heals, 5, True)], [])
    assert transitions(results, *last_probes(migrated_engine, now)) == first
    # The next sweep compares with these rows: nothing changed, nothing to send.
    later = transitions(results, *last_probes(migrated_engine, now + timedelta(minutes=5)))
    assert later == ((), ())
