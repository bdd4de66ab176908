"""Rolling upgrade on N real sshd hosts: fatctl's rollout engine vs `ansible-playbook`.

Run as root from the repository root:
    apt-get install -y ansible          # Debian 12: ansible-core 2.14
    python -m bench.rollout [--sizes 10 50] [--parallel 10] [--rounds 3] [--poll 0.5]

Every host runs the rollout harness runtime (tests/integration/rollout/harness.py) serving
the old version. The per-host work is the same for all three measurements (bench/_work.py):
fatctl's own command builders - read `current`, install beside, test-boot, atomic symlink
switch, restart, health gate (two passes `--poll` apart) and prune.
- fatctl: `fatctl.services.rollout.engine.start` (what `fatctl upgrade` calls), canary 0,
  batch = `--parallel`, recording every host step in a SQLite state database.
- Ansible: a generated playbook with `serial` = `forks` = `--parallel`, `strategy: free`,
  pipelining, ControlPersist, pinned known_hosts, no fact gathering (bench/_ansible.py).
- lower bound: the same commands run directly on each host (inside its namespace, no SSH);
  the slowest host's time x the number of waves. Measured two ways: one host at a time
  ("lower", what one host's work costs, as on real separate boxes) and a wave's hosts at
  once ("lower/w": here all hosts share this machine's cores, which any tool suffers too).
  "lower" is timed with the install's download pause off and adds `--install-s` back (a
  sleep costs what it says; timing it host after host would take N x that long).
The install: the harness copies a few-KB directory, where a real OpenClaw install downloads
and unpacks ~650 MB through npm. `--install-s` (default 5 s) pauses each install that long to
stand for that download. A real one takes far longer (`npm install openclaw@2026.9.6` with an
empty cache, as fat-install-runtime runs it: 41 s and 51 s on this machine), so the default is
the side that is hard on fatctl. `--install-s 0` gives the bare harness work, where a session's
cost on this 2-core machine is larger than the work itself.
- one-script: fatctl's SSH runner alone, one connection and one session per host running the
  whole work, wave by wave: the floor under any paramiko-based engine, to locate overhead.
Hosts are put back to the old version before every measured run; each round alternates which
tool goes first; the table shows medians over the rounds. Figures only: nothing asserts time.
Targets (issue 7): fatctl <= 0.5 x Ansible and <= 1.3 x the lower bound.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import _ansible
from bench._hosts import (
    BenchFleet,
    bench_fleet,
    reset,
    run_direct,
    set_install_time,
    upgraded,
)
from bench._work import Step, as_script, steps
from fatctl.domain import RolloutPolicy
from tests.integration.rollout.harness import NEW, OLD


@dataclass
class Size:
    n: int
    waves: int
    fatctl: list[float] = field(default_factory=list)
    ansible: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    lower_wave: list[float] = field(default_factory=list)
    per_host_median: list[float] = field(default_factory=list)


def run_fatctl(fleet: BenchFleet, n: int, parallel: int, poll: float, keep: int) -> float:
    from fatctl.pacing.poll import Poll
    from fatctl.services.rollout import engine as rollout

    run = rollout.Run(
        fleet.engine,
        fleet.settings,
        fleet.layout,
        "bench@local",
        lambda *a, **k: None,
        Poll(poll),
    )
    policy = RolloutPolicy(canary=0, batch=parallel, health_timeout_s=60, keep_versions=keep)
    targets = [h.target(connect_timeout=30.0) for h in fleet.hosts[:n]]
    start = time.monotonic()
    report = rollout.start(run, targets, NEW, policy)
    took = time.monotonic() - start
    if report.state != "completed":
        raise RuntimeError(f"fatctl rollout {report.state}: {report.reason} {report.rows[:2]}")
    return took


def run_ansible(fleet: BenchFleet, project: _ansible.Project, n: int, tag: str) -> float:
    targets = [h.target() for h in fleet.hosts[:n]]
    log = fleet.workdir / f"ansible-{n}-{tag}.log"
    try:
        took, code = _ansible.run_playbook(project, log)
    finally:
        _ansible.stop_masters(project, targets)
    if code != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        why = [line for line in lines if "UNREACHABLE" in line or "FAILED" in line][:2]
        raise RuntimeError(f"ansible-playbook exited {code}: {' | '.join(why or lines[-3:])}")
    return took


def run_one_script(fleet: BenchFleet, n: int, parallel: int, work: list[Step]) -> float:
    """fatctl's SSH runner alone: per wave, connect and run the whole work as one script.

    Not a rollout (nothing recorded, no gate logic): the floor that connection setup and one
    session per host put under any paramiko-based engine, for locating the engine's overhead.
    """
    from fatctl.remote.fanout import fan_out
    from fatctl.remote.runner import Pool

    targets = [h.target(connect_timeout=30.0) for h in fleet.hosts[:n]]
    script = as_script(work)
    start = time.monotonic()
    with Pool() as pool:
        for first in range(0, n, parallel):
            wave = targets[first : first + parallel]
            bad = [r for r in fan_out(wave, script, parallel=parallel, pool=pool) if not r.ok]
            if bad:
                raise RuntimeError(f"one-script run failed: {bad[0].as_dict()}")
    return time.monotonic() - start


def lower_bound(fleet: BenchFleet, n: int, work: list[Step]) -> tuple[float, float]:
    """(slowest, median) seconds of the bare per-host work, one host at a time."""
    script = as_script(work)
    times = [run_direct(host, script) for host in fleet.hosts[:n]]
    return max(times), statistics.median(times)


def lower_bound_waves(fleet: BenchFleet, n: int, parallel: int, work: list[Step]) -> float:
    """Slowest host's bare work when each wave's hosts run theirs at the same time."""
    from concurrent.futures import ThreadPoolExecutor

    script = as_script(work)
    hosts = fleet.hosts[:n]
    times: list[float] = []
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for first in range(0, n, parallel):
            wave = hosts[first : first + parallel]
            times += pool.map(lambda h: run_direct(h, script), wave)
    return max(times)


def measured(fleet: BenchFleet, n: int, what: Callable[[], float]) -> float:
    """Reset the first `n` hosts, run `what`, check that every host really was upgraded."""
    hosts = fleet.hosts[:n]
    reset(fleet, hosts)
    took = what()
    done = upgraded(hosts)
    if done != n:
        raise RuntimeError(f"only {done}/{n} hosts were upgraded")
    return took


def bench_size(fleet: BenchFleet, args: argparse.Namespace, n: int) -> Size:
    size = Size(n, math.ceil(n / args.parallel))
    work = steps(fleet.layout, NEW, OLD, args.poll, args.keep)
    play = _ansible.playbook(work, fleet.layout, NEW, OLD, args.parallel, args.strategy)
    targets = [h.target() for h in fleet.hosts[:n]]
    control = Path(tempfile.mkdtemp(prefix="fa", dir="/tmp"))  # short: socket paths <= 108
    try:
        project = _ansible.write_project(
            fleet.workdir / f"ansible-{n}", control, targets, play, args.parallel
        )
        rounds(fleet, args, size, work, project)
    finally:
        shutil.rmtree(control, ignore_errors=True)
    return size


def rounds(
    fleet: BenchFleet,
    args: argparse.Namespace,
    size: Size,
    work: list[Step],
    project: _ansible.Project,
) -> None:
    n = size.n
    for r in range(args.rounds):
        tools: list[tuple[list[float], Callable[..., float]]] = [
            (size.fatctl, lambda: run_fatctl(fleet, n, args.parallel, args.poll, args.keep)),
            (size.ansible, lambda tag=str(r): run_ansible(fleet, project, n, tag)),
            (size.floor, lambda: run_one_script(fleet, n, args.parallel, work)),
        ]
        for into, what in tools if r % 2 == 0 else tools[::-1]:
            into.append(measured(fleet, n, what))
        reset(fleet, fleet.hosts[:n])
        set_install_time(fleet, 0)
        try:
            slowest, typical = lower_bound(fleet, n, work)
        finally:
            set_install_time(fleet, args.install_s)
        slowest, typical = slowest + args.install_s, typical + args.install_s
        size.lower.append(slowest * size.waves)
        size.per_host_median.append(typical)
        reset(fleet, fleet.hosts[:n])
        size.lower_wave.append(lower_bound_waves(fleet, n, args.parallel, work) * size.waves)
        print(
            f"  N={n} round {r + 1}: fatctl {size.fatctl[-1]:.2f}s  ansible "
            f"{size.ansible[-1]:.2f}s  one-script {size.floor[-1]:.2f}s  "
            f"slowest host {slowest:.2f}s (median {typical:.2f}s), "
            f"in waves {size.lower_wave[-1] / size.waves:.2f}s",
            flush=True,
        )


def report(sizes: list[Size]) -> None:
    head = f"{'N':>4} {'waves':>5} {'fatctl s':>9} {'ansible s':>10} {'ans/fat':>8}"
    tail = f"{'lower s':>8} {'fat/low':>8} {'lower/w s':>9} {'fat/low/w':>9} {'1-script s':>10}"
    print(f"\n{head} {tail}")
    ok = True
    for s in sizes:
        fat, ans = statistics.median(s.fatctl), statistics.median(s.ansible)
        low, low_w = statistics.median(s.lower), statistics.median(s.lower_wave)
        floor = statistics.median(s.floor)
        print(
            f"{s.n:>4} {s.waves:>5} {fat:>9.2f} {ans:>10.2f} {ans / fat:>8.2f} {low:>8.2f}"
            f" {fat / low:>8.2f} {low_w:>9.2f} {fat / low_w:>9.2f} {floor:>10.2f}"
        )
        half, near, near_w = fat <= 0.5 * ans, fat <= 1.3 * low, fat <= 1.3 * low_w
        ok = ok and half and near
        print(
            f"     N={s.n}: fatctl <= 0.5 x ansible: {_yes(half)};"
            f" <= 1.3 x lower bound: {_yes(near)} (in waves: {_yes(near_w)})"
        )
    print(f"targets {'hold' if ok else 'DO NOT all hold'} (medians over rounds)")


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--parallel", type=int, default=10, help="batch = forks (default 10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.5, help="health gate interval (s)")
    parser.add_argument("--keep", type=int, default=3, help="versions kept by prune")
    parser.add_argument(
        "--install-s",
        type=float,
        default=5.0,
        help="seconds each install pauses for the package download it stands for (default 5)",
    )
    parser.add_argument("--strategy", choices=("free", "linear"), default="free")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/rollout.py needs root (throwaway users, mount namespaces)")
    if not _ansible.available():
        raise SystemExit("ansible-playbook not found: apt-get install -y ansible")
    if min(args.sizes) < 1 or args.parallel < 1 or args.rounds < 1:
        raise SystemExit("--sizes, --parallel and --rounds must be positive")
    if args.poll < 0 or args.install_s < 0:
        raise SystemExit("--poll and --install-s must not be negative")
    print(
        f"cpus={os.cpu_count()} parallel={args.parallel} rounds={args.rounds} poll={args.poll}s"
        f" install+={args.install_s:g}s strategy={args.strategy} load={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with bench_fleet(max(args.sizes)) as fleet:
        set_install_time(fleet, args.install_s)
        sizes = [bench_size(fleet, args, n) for n in args.sizes]
    report(sizes)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
