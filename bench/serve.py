"""Print what `fatctl serve --workers N` does with a burst of creates: 200 agents created through
the HTTP API at once, against the sandbox's API emulators (`--no-box`: provisioning stops after
infra and DNS), with 1, 2 and 4 worker processes.

Per run: the wall time from the first request to the last workflow's success, the control-plane
time per agent (a provision workflow's run, from its dequeue to its end, as DBOS recorded it;
and its whole latency from the request, queueing included), and the calls per provision seen
by the emulators (Hetzner without the action polls, which are the SDK's waiting, and with them;
Cloudflare). The emulators' rate budgets are raised: the bench counts, it does not throttle.
It prints figures and asserts nothing.

    python bench/serve.py [--agents 200] [--workers 1,2,4]

The database is a fresh one on FATCTL_TEST_DATABASE_URL's PostgreSQL server when that is set
(several workers share the queues through PostgreSQL), else a SQLite file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.provision import api_calls, upload_fleet_keys
from fatctl.sandbox.cloudflare import start_cloudflare_emulator
from fatctl.sandbox.hetzner import start_emulator
from fatctl.secrets import generate_master_key
from tests.fixtures.cli import start_fatctl
from tests.integration.service.conftest import make_tokens, service_plane
from tests.integration.service.test_recovery import free_port, serve_env, serving_api
from tests.integration.service.test_workers import burst, dbos_table

HUGE = 10**7


@contextmanager
def database(tmp: Path) -> Iterator[str]:
    """A fresh PostgreSQL database on the test server, or a SQLite file."""
    server = os.environ.get("FATCTL_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{tmp / 'state.sqlite'}"
        return
    import psycopg

    name = f"fatctl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def workflow_times(plane: Any) -> list[tuple[str, int, int, int]]:
    """(status, created, started, updated) in ms of every provision workflow."""
    from sqlalchemy import text

    query = (f"SELECT status, created_at, started_at_epoch_ms, updated_at FROM "
             f"{dbos_table(plane)} WHERE workflow_uuid LIKE 'provision-%'")  # fmt: skip
    with plane.db.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query))]


def finished(plane: Any) -> int:
    """Provision workflows that ended (an ERROR too: the figures then say how many failed)."""
    return sum(row[0] in ("SUCCESS", "ERROR") for row in workflow_times(plane))


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, as a service manager stops `fatctl serve` (it stops its workers in turn)."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def beating(plane: Any) -> int:
    from sqlalchemy import text

    with plane.db.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM worker_heartbeats")).scalar_one())


def wait_for(what: str, probe: Any, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while not probe():
        if time.monotonic() > end:
            raise SystemExit(f"bench: gave up waiting for {what}")
        time.sleep(0.1)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(workers: int, agents: int, tmp: Path) -> dict[str, Any]:
    hetzner = start_emulator(tmp / "hetzner", action_delay=0.05)
    # A paid zone: a Free one holds 200 records, the DNS of 100 agents (emulator's plans.py).
    cloudflare = start_cloudflare_emulator(
        tmp / "cloudflare", zones=("sandbox.test",), zone_plans={"sandbox.test": "pro"}
    )
    hetzner.set_rate_limit(HUGE, 3600.0)
    cloudflare.set_rate_limit(HUGE, 300.0)
    key = generate_master_key()
    with database(tmp) as url:
        plane = service_plane(tmp, hetzner, cloudflare, url, master_key=key)
        upload_fleet_keys(plane)
        token = make_tokens(plane.db)["writer"]
        env = {**serve_env(plane, key, tmp), "FATCTL_POLL_INTERVAL": "0.05"}
        port = free_port()
        log = (tmp / "serve.log").open("w")
        proc = start_fatctl("serve", "--no-box", "--port", str(port), "--workers", str(workers),
                            env=env, stdout=log, stderr=log)  # fmt: skip
        try:
            api = serving_api(proc, port, token, tmp / "serve.log")
            api.timeout = 120
            wait_for("the workers", lambda: beating(plane) >= workers + 1, 120)
            hetzner.reset_stats()
            cloudflare.reset_stats()
            t0 = time.monotonic()
            burst(api, agents, 0)
            wait_for("every provision", lambda: finished(plane) >= agents, 1800)
            wall = time.monotonic() - t0
        finally:
            stop(proc)
            log.close()
        rows = workflow_times(plane)
        figures = summary(workers, agents, wall, rows, hetzner.stats(), cloudflare.stats())
        plane.db.dispose()
    hetzner.stop()
    cloudflare.stop()
    return figures


def summary(
    workers: int, agents: int, wall: float, rows: list[Any], hz: Any, cf: Any
) -> dict[str, Any]:
    runs = [(u - s) / 1000 for _, _, s, u in rows if s is not None]
    latency = [(u - c) / 1000 for _, c, _, u in rows]
    return {
        "workers": workers, "agents": agents, "wall_s": round(wall, 1),
        "agents_per_min": round(agents / wall * 60, 1),
        "run_median_s": round(statistics.median(runs), 2),
        "run_p95_s": round(quantile(runs, 0.95), 2),
        "latency_median_s": round(statistics.median(latency), 1),
        "latency_p95_s": round(quantile(latency, 0.95), 1),
        "hetzner_calls_per_agent": round(api_calls(hz) / agents, 1),
        "hetzner_calls_with_polls": round(hz["total"] / agents, 1),
        "cloudflare_calls_per_agent": round(cf["total"] / agents, 1),
        "429s": hz["rate_limited"] + cf["rate_limited"],
        "failed": sum(row[0] != "SUCCESS" for row in rows),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    db = "PostgreSQL" if os.environ.get("FATCTL_TEST_DATABASE_URL") else "SQLite"
    print(f"{args.agents} creates through `fatctl serve --no-box --workers N`, {db}")
    for n in (int(w) for w in args.workers.split(",")):
        tmp = Path(tempfile.mkdtemp(prefix="fatctl-bench-serve-"))
        figures = run(n, args.agents, tmp)
        print(figures, flush=True)
        if figures["failed"]:
            print(f"  failures: see {tmp / 'serve.log'} (the workers' log too)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
