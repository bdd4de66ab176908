"""Prometheus metrics over fatctl's state, read at scrape time.

`FleetCollector` is a custom collector: each scrape reads the state database (plain DB-API,
`fatctl.state.rawdb`, a handful of aggregate queries), the probe history and the in-process
sources it was given, and yields fresh metric families. Nothing is kept in global gauges, so
two registries (two tests, two `fatctl serve` apps) never see each other's values, and several
worker processes need no multiprocess mode: whichever serves the scrape reads the same database.

Per-agent series exist only where an alert needs the agent's name (probe up/flapping, channel
readiness, disk, memory, the gateway's restarts by systemd, credential expiry, backup age, repair
pages); everything else is an aggregate. fat-health's figures (disk, memory, channels, restarts)
exist only for boxes the sweep asked over SSH (`BoxFigures`, stored on their probe rows). Every
source is optional and None-safe: a source that is missing yields nothing, one that fails yields
nothing for this scrape and `fatctl_metrics_source_up{source} 0`, so a broken table never takes
the whole endpoint down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fatctl.domain import HealthReport
from fatctl.monitoring.history import ProbeHistory
from fatctl.monitoring.targets import RUNNING_STATES
from fatctl.pacing.budget import budget_view
from fatctl.services.common.secret_names import R2_CREDENTIALS_SECRET
from fatctl.state.rawdb import connect, fetch_dicts

log = logging.getLogger(__name__)

# fat-health reports disk and memory in MiB (`df -Pm`, MemAvailable / 1024).
MIB = 1024 * 1024
# A channel state from fat-health: 1 ready, 0 down; others (unknown, not-linked) say nothing
# about the box and get no series.
CHANNEL_VALUES = {"ready": 1.0, "failing": 0.0, "not-running": 0.0, "not-connected": 0.0}
LATENCY_QUANTILES = (0.5, 0.9, 0.99, 1.0)


@dataclass(frozen=True)
class BoxFigures:
    """What fat-health reported of a box's resources and channels (issue 20), as the sweep
    stores it in `probe_results` and the metrics show it; None: not reported."""

    disk_free_mb: int | None = None
    mem_available_mb: int | None = None
    gateway_restarts: int | None = None
    gateway_memory_bytes: int | None = None
    gateway_memory_peak_bytes: int | None = None
    channels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_report(cls, report: Mapping[str, Any] | None) -> BoxFigures | None:
        """From `fat-health --json`'s object; None when there is none (the box was not reached
        or printed no report). A field of the wrong type counts as not reported."""
        if not isinstance(report, Mapping):
            return None

        def number(key: str) -> int | None:
            value = report.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        channels = report.get("channels")
        named = ({str(k): str(v) for k, v in channels.items()}
                 if isinstance(channels, Mapping) else {})  # fmt: skip
        return cls(number("disk_free_mb"), number("mem_available_mb"), number("gateway_restarts"),
                   number("gateway_memory_bytes"), number("gateway_memory_peak_bytes"),
                   named)  # fmt: skip


@dataclass(frozen=True)
class WorkflowCounts:
    """What the workflow runtime reports: work waiting per queue, failed workflows so far."""

    queue_depth: Mapping[str, int]
    failed_total: int


@dataclass(frozen=True)
class Sources:
    """Where the metrics come from; every one may be absent."""

    state_url: str | None = None
    probes: ProbeHistory | None = None
    # Read at each scrape, e.g. `store.stored_history` over `probe_results` (what `fatctl
    # serve`'s sweeps stored); used when `probes` (an in-process history) is not given.
    probe_history: Callable[[], ProbeHistory] | None = None
    budgets: Callable[[], Iterable[Mapping[str, object]]] | None = budget_view
    box_health: Callable[[], Mapping[str, HealthReport]] | None = None
    # What the sweeps stored of the boxes they asked over SSH (`store.stored_box_figures`);
    # used when `box_health` (reports in hand) is not given.
    box_figures: Callable[[], Mapping[str, BoxFigures]] | None = None
    workflows: Callable[[], WorkflowCounts | None] | None = None
    extra_states: tuple[str, ...] = field(default=())  # more states to give per-agent series


def timestamp(value: Any) -> float | None:
    """Seconds since the epoch from a database timestamp: PostgreSQL hands back an aware
    datetime, SQLite an ISO string (naive, UTC by fatctl's convention)."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def quantile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank quantile of an already sorted, non-empty list."""
    rank = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


_AGENTS_BY_STATE = """
SELECT a.state, o.plan, COUNT(*) AS n FROM agents a JOIN owners o ON o.id = a.owner_id
GROUP BY a.state, o.plan
"""
_CREDENTIAL_EXPIRY = """
SELECT a.name, s.expires_at AS at FROM secrets s JOIN agents a ON a.id = s.agent_pk
WHERE s.name = ? AND s.expires_at IS NOT NULL AND a.state IN ({states})
"""
# Agents with backups configured (an age recipient) and their newest backup; none yet: NULL.
# `backups` holds what fatctl took or listed and also what the boxes' own timer took, as
# fat-health reported it to the sweep (`sweep.reported_backup`): either counts.
_NEWEST_BACKUP = """
SELECT a.name, MAX(b.created_at) AS at FROM agents a LEFT JOIN backups b ON b.agent_pk = a.id
WHERE a.backup_recipient <> '' AND a.state IN ({states}) GROUP BY a.name
"""

_REPAIR_HOLDS = "SELECT a.name, h.kind FROM repair_holds h JOIN agents a ON a.id = h.agent_pk"
_REPAIR_ATTEMPTS = "SELECT rung, result, COUNT(*) AS n FROM repair_attempts GROUP BY rung, result"


class FleetCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def describe(self) -> Iterable[Any]:
        return []  # no database read when the collector is registered

    def collect(self) -> Iterator[Any]:
        up = _gauge("fatctl_metrics_source_up", "1 if the source answered this scrape.", ["source"])
        for source, families in self._sources():
            try:
                produced = list(families())
            except Exception as exc:  # one broken source must not empty the whole scrape
                log.warning("metrics source %s failed: %s", source, type(exc).__name__)
                up.add_metric([source], 0.0)
                continue
            up.add_metric([source], 1.0)
            yield from produced
        yield up

    def _sources(self) -> Iterator[tuple[str, Callable[[], Iterable[Any]]]]:
        s = self.sources
        if s.state_url:
            yield "agents", self._agents
            yield "credentials", self._credentials
            yield "backups", self._backups
            yield "repair", self._repair
        if s.probes is not None or s.probe_history is not None:
            yield "probes", self._probes
        if s.budgets is not None:
            yield "budgets", self._budgets
        if s.box_health is not None or s.box_figures is not None:
            yield "box_health", self._box_health
        if s.workflows is not None:
            yield "workflows", self._workflows

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        assert self.sources.state_url
        with connect(self.sources.state_url) as conn:
            return fetch_dicts(conn, sql, params)

    def _running(self) -> tuple[str, tuple[str, ...]]:
        states = RUNNING_STATES + self.sources.extra_states
        return ", ".join("?" for _ in states), states

    def _agents(self) -> Iterable[Any]:
        family = _gauge("fatctl_agents", "Agents by state and plan.", ["state", "plan"])
        for row in self._query(_AGENTS_BY_STATE):
            family.add_metric([row["state"], row["plan"]], float(row["n"]))
        return [family]

    def _per_agent_timestamps(
        self, name: str, doc: str, sql: str, params: tuple[Any, ...], missing: float | None
    ) -> Iterable[Any]:
        """A family of one timestamp per running agent from `sql`'s (name, at) rows; an agent
        whose `at` is NULL gets `missing`, or no series when that is None."""
        marks, states = self._running()
        family = _gauge(name, doc, ["agent"])
        for row in self._query(sql.format(states=marks), (*params, *states)):
            at = timestamp(row["at"])
            if (value := missing if at is None else at) is not None:
                family.add_metric([row["name"]], value)
        return [family]

    def _credentials(self) -> Iterable[Any]:
        return self._per_agent_timestamps(
            "fatctl_r2_credentials_expiry_timestamp_seconds",
            "When the agent's R2 credentials expire (Unix time).",
            _CREDENTIAL_EXPIRY,
            (R2_CREDENTIALS_SECRET,),
            missing=None,
        )

    def _backups(self) -> Iterable[Any]:
        return self._per_agent_timestamps(
            "fatctl_backup_last_timestamp_seconds",
            "When the agent's newest state backup was taken (Unix time; 0: never).",
            _NEWEST_BACKUP,
            (),
            missing=0.0,
        )

    def _repair(self) -> Iterable[Any]:
        """Automatic repair (issue 20): each held or paged agent (per agent: the page is an
        alert's), and the recorded rungs by outcome."""
        held = _gauge("fatctl_repair_held", "1 per agent repair leaves alone: an operator's "
                      "hold or a page.", ["agent", "kind"])  # fmt: skip
        for row in self._query(_REPAIR_HOLDS):
            held.add_metric([row["name"], row["kind"]], 1.0)
        rungs = _gauge("fatctl_repair_attempts", "Recorded repair rungs and pages by outcome.",
                       ["rung", "result"])  # fmt: skip
        for row in self._query(_REPAIR_ATTEMPTS):
            rungs.add_metric([row["rung"], row["result"]], float(row["n"]))
        return [held, rungs]

    def _probes(self) -> Iterable[Any]:
        history = self.sources.probes
        if history is None:
            assert self.sources.probe_history is not None
            history = self.sources.probe_history()
        latest = history.latest()
        up = _gauge("fatctl_probe_up", "1 if the box's last /readyz probe succeeded.", ["agent"])
        flapping = _gauge(
            "fatctl_probe_flapping", "1 for a box whose probe keeps changing.", ["agent"]
        )
        results = _gauge("fatctl_probe_results", "Last results by outcome.", ["result"])
        latency = _gauge(
            "fatctl_probe_latency_seconds",
            "Latency of the last successful probes, by quantile.",
            ["quantile"],
        )
        for result in latest:
            up.add_metric([result.agent], 1.0 if result.ok else 0.0)
        for agent in history.flapping():
            flapping.add_metric([agent], 1.0)
        ok = sorted(r.latency_s for r in latest if r.ok)
        results.add_metric(["ok"], float(len(ok)))
        results.add_metric(["failed"], float(len(latest) - len(ok)))
        for q in LATENCY_QUANTILES if ok else ():
            latency.add_metric([f"{q:g}"], quantile(ok, q))
        families = [up, flapping, results, latency]
        if history.last_sweep_s is not None:
            sweep = _gauge("fatctl_probe_sweep_seconds", "How long the last sweep took.")
            sweep.add_metric([], history.last_sweep_s)
            families.append(sweep)
        return families

    def _budgets(self) -> Iterable[Any]:
        assert self.sources.budgets is not None
        remaining = _gauge(
            "fatctl_api_budget_remaining", "Requests left in the API's window.", ["api"]
        )
        limit = _gauge("fatctl_api_budget_limit", "The API's requests per window.", ["api"])
        for view in self.sources.budgets():
            api = str(view["api"])
            if isinstance(left := view.get("remaining"), int | float):
                remaining.add_metric([api], float(left))
            if isinstance(cap := view.get("limit"), int | float):
                limit.add_metric([api], float(cap))
        return [remaining, limit]

    def _box_health(self) -> Iterable[Any]:
        """Per agent, only for the boxes fat-health reported on (the ones the sweep asked):
        disk, memory, channels, and systemd's restarts of the gateway (the resource guard)."""
        s = self.sources
        if s.box_health is not None:
            reports = s.box_health().items()
            figures = {a: BoxFigures.from_report(asdict(r)) or BoxFigures() for a, r in reports}
        else:
            assert s.box_figures is not None
            figures = dict(s.box_figures())
        disk = _gauge("fatctl_box_disk_free_bytes", "Free space on the box's /.", ["agent"])
        memory = _gauge("fatctl_box_memory_available_bytes", "The box's MemAvailable.", ["agent"])
        channels = _gauge(
            "fatctl_channel_ready", "1 if the channel is ready on the box.", ["agent", "channel"]
        )
        restarts = _gauge("fatctl_gateway_restarts", "Restarts of the gateway unit by systemd "
                          "since it was last started (NRestarts).", ["agent"])  # fmt: skip
        for agent, seen in sorted(figures.items()):
            if seen.disk_free_mb is not None:
                disk.add_metric([agent], float(seen.disk_free_mb * MIB))
            if seen.mem_available_mb is not None:
                memory.add_metric([agent], float(seen.mem_available_mb * MIB))
            if seen.gateway_restarts is not None:
                restarts.add_metric([agent], float(seen.gateway_restarts))
            for channel, state in sorted(seen.channels.items()):
                if state in CHANNEL_VALUES:
                    channels.add_metric([agent, channel], CHANNEL_VALUES[state])
        return [disk, memory, channels, restarts]

    def _workflows(self) -> Iterable[Any]:
        assert self.sources.workflows is not None
        counts = self.sources.workflows()
        if counts is None:
            return []
        depth = _gauge("fatctl_workflow_queue_depth", "Workflows waiting per queue.", ["queue"])
        for queue, n in sorted(counts.queue_depth.items()):
            depth.add_metric([queue], float(n))
        failed = CounterMetricFamily("fatctl_workflows_failed", "Workflows that ended in error.")
        failed.add_metric([], float(counts.failed_total))
        return [depth, failed]


def fleet_registry(sources: Sources) -> CollectorRegistry:
    """A registry of its own holding only the fleet collector."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(sources))
    return registry
