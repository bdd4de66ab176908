"""Watching the fleet from outside: probes, metrics and the alert rules Prometheus evaluates.

Entry points: `sweep.sweep_fleet` (what `fatctl serve` runs on a schedule: probe every running
box, SSH `fat-health` only for the failing ones, store the results in `probe_results` through
`store`), `served.served_registry` (the registry `GET /metrics` of `fatctl serve` exposes,
reading the stored history), `targets.running_targets` (the boxes to probe, from the state
database), `probe.sweep` (one concurrent HTTPS `/readyz` request per box, results per box),
`history.ProbeHistory` (recent results per agent: which boxes are down, flapping, or worth an
SSH `fat-health --json`), `workflows.workflow_counts` (DBOS's queue depth and failures, read
with plain SQL), `metrics.fleet_registry` (a Prometheus registry whose collector reads
the state database and the probe history at scrape time), `exposition.metrics_app` (an ASGI
app serving `/metrics` on its own) and `rules.rules_text` (the shipped rules file, with its
`for:` durations optionally shortened for tests).
"""
