"""The whole watch, end to end on loopback: 200 stand-in boxes (some slow, some failing in
different ways, some flapping) swept by the prober every second, the /metrics app serving the
probe history, and a real Prometheus (Debian `prometheus`) scraping it every second and
evaluating the shipped rules with their `for:` shortened to 10 s. The alerts must fire for the
failing boxes and only for them, and clear once those boxes answer again.

The per-box timeout is 3 s and a sweep lasts as long as its slowest box (the stuck ones), so a
sweep takes about 3 s: on two cores shared with other test runs, 200 TLS handshakes started at
once took up to a second on each side, and a 1 s timeout failed healthy boxes. `for:` is 10 s,
not less: a flapping box alternates every sweep, so it shows 0 for a whole sweep (3 s) plus the
drift of three unsynchronised clocks (sweep, scrape, evaluation), which a `for:` near that
would mistake for a box that stays down.

Nothing is asserted on time: every wait polls Prometheus's `/api/v1/alerts` up to a generous
deadline, which only bounds how long a broken run takes to fail.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from fatctl.monitoring.exposition import metrics_app
from fatctl.monitoring.history import ProbeHistory
from fatctl.monitoring.metrics import Sources, fleet_registry
from fatctl.monitoring.probe import ProbeTarget, run_sweep, trust
from fatctl.monitoring.rules import rules_text
from tests.integration.monitoring.standin_fleet import StandinFleet, standin_fleet

pytestmark = pytest.mark.skipif(not shutil.which("prometheus"), reason="prometheus not installed")

DOMAIN = "fleet.test"
COUNT = 200
DEADLINE_S = 120.0


def behaviours() -> dict[str, str]:
    """agent000..agent199: every 20th down (503), every 40th from 5 closes without answering,
    every 40th from 25 stuck past the timeout, every 20th from 10 flapping, every 10th from 3
    slow but in time; the rest answer ready."""
    table = {}
    for i in range(COUNT):
        kind = "ok"
        if i % 20 == 0:
            kind = "down"
        elif i % 40 == 5:
            kind = "close"
        elif i % 40 == 25:
            kind = "slow:60"
        elif i % 20 == 10:
            kind = "flap"
        elif i % 10 == 3:
            kind = "slow:0.3"
        table[f"agent{i:03d}"] = kind
    return table


BEHAVIOURS = behaviours()
FAILING = {a for a, k in BEHAVIOURS.items() if k in ("down", "close", "slow:60")}
FLAPPING = {a for a, k in BEHAVIOURS.items() if k == "flap"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sweeper:
    """The prober on a one-second schedule in a thread, as `fatctl serve` will run it."""

    def __init__(self, fleet: StandinFleet, history: ProbeHistory) -> None:
        self.targets = [
            ProbeTarget(a, f"{a}.{DOMAIN}", "127.0.0.1", fleet.port) for a in BEHAVIOURS
        ]
        self.verify = trust(fleet.pems.ca)
        self.history = history
        self.stop = threading.Event()
        self.sweeps = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                start = time.monotonic()
                found = run_sweep(self.targets, timeout_s=3.0, verify=self.verify)
                self.history.record(found, sweep_s=time.monotonic() - start)
                self.sweeps += 1
                self.stop.wait(max(0.0, 1.0 - (time.monotonic() - start)))
        except BaseException as exc:  # the test fails on it instead of waiting for nothing
            self.error = exc
            raise

    def alive(self) -> None:
        if self.error is not None or not self.thread.is_alive():
            pytest.fail(f"the sweeper stopped: {self.error!r}")


@pytest.fixture
def metrics_url(tmp_path: Path) -> Iterator[tuple[str, StandinFleet, Sweeper]]:
    """Stand-ins, the sweeper and the /metrics app on a loopback port; all stopped after."""
    history = ProbeHistory(keep=10, down_after=3, flap_after=3)
    app = metrics_app(fleet_registry(Sources(probes=history, budgets=None)))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    with standin_fleet(tmp_path, DOMAIN, BEHAVIOURS, processes=2) as fleet:
        sweeper = Sweeper(fleet, history)
        sweeper.thread.start()
        serving.start()
        try:
            yield f"127.0.0.1:{port}", fleet, sweeper
        finally:
            server.should_exit = True
            sweeper.stop.set()
            serving.join(timeout=30)
            sweeper.thread.join(timeout=30)
            sock.close()


@pytest.fixture
def prometheus(tmp_path: Path, metrics_url: tuple[str, StandinFleet, Sweeper]) -> Iterator[str]:
    """A real Prometheus scraping the app every second with the shipped rules, `for: 10s`."""
    scrape = {"job_name": "fatctl", "static_configs": [{"targets": [metrics_url[0]]}]}
    with running_prometheus(tmp_path, scrape, for_duration="10s") as url:
        yield url


@contextmanager
def running_prometheus(tmp_path: Path, scrape: dict[str, Any], for_duration: str) -> Iterator[str]:
    """A real Prometheus with the shipped rules (`for: <for_duration>`), scraping and
    evaluating every second with the one `scrape` config; its URL, once it is ready."""
    (tmp_path / "rules.yml").write_text(rules_text(for_duration=for_duration))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [scrape],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _ready(url), "Prometheus ready", proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def eventually(
    check: Callable[[], Any], what: str, *, proc: subprocess.Popen[bytes] | None = None
) -> Any:
    """Poll `check` until it answers truthy; fail naming `what` and its last answer if the
    generous deadline passes (or the process it waits on dies)."""
    deadline = time.monotonic() + DEADLINE_S
    last: Any = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}")
        last = check()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"{what}: not reached; last seen {last!r}")


def alerts(url: str) -> dict[str, dict[str, set[str]]]:
    """{alertname: {"firing": agents, "pending": agents}} from Prometheus's active alerts."""
    found: dict[str, dict[str, set[str]]] = {}
    for alert in httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]:
        by_state = found.setdefault(
            alert["labels"]["alertname"], {"firing": set(), "pending": set()}
        )
        by_state[alert["state"]].add(alert["labels"].get("agent", ""))
    return found


def firing(seen: dict[str, dict[str, set[str]]], name: str) -> set[str]:
    return seen.get(name, {}).get("firing", set())


def test_alerts_fire_for_exactly_the_failing_boxes_and_clear_when_they_recover(
    prometheus: str, metrics_url: tuple[str, StandinFleet, Sweeper], figure: Callable[..., None]
) -> None:
    _, fleet, sweeper = metrics_url
    start = time.monotonic()
    observed: list[dict[str, dict[str, set[str]]]] = []

    def settled() -> bool:
        sweeper.alive()
        seen = alerts(prometheus)
        observed.append(seen)
        return firing(seen, "AgentDown") == FAILING and firing(seen, "AgentFlapping") == FLAPPING

    eventually(settled, "AgentDown for the failing boxes, AgentFlapping for the flapping ones")
    figure("alerts firing after start", time.monotonic() - start, " s")
    figure("last sweep of 200 boxes", sweeper.history.last_sweep_s or 0.0, " s")
    wrongly_down = set().union(*(firing(s, "AgentDown") for s in observed)) - FAILING
    assert wrongly_down == set(), "AgentDown fired for boxes that were not down"
    # The history agrees, and escalates only failing boxes to SSH.
    assert set(sweeper.history.down()) == FAILING
    assert FAILING <= set(sweeper.history.escalate()) <= FAILING | FLAPPING

    fleet.set({agent: "ok" for agent in FAILING})
    recovered = time.monotonic()

    def cleared() -> bool:
        sweeper.alive()
        seen = alerts(prometheus)
        observed.append(seen)
        down = seen.get("AgentDown", {"firing": set(), "pending": set()})
        # A flapping box is pending now and then (a 0 for one sweep), never firing.
        return not down["firing"] and not down["pending"] & FAILING

    eventually(cleared, "AgentDown cleared after the boxes recovered")
    figure("AgentDown cleared after recovery", time.monotonic() - recovered, " s")
    assert set().union(*(firing(s, "AgentDown") for s in observed)) <= FAILING
    assert firing(alerts(prometheus), "AgentFlapping") == FLAPPING  # they still flap
    assert sweeper.sweeps >= 5
