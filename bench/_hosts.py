"""Real sshd hosts running the rollout harness runtime, for benchmarks (outside pytest).

Reuses the test fixtures by import: `tests.fixtures.sshd` starts the daemons (own host key, own
/home per host), `tests.integration.rollout.harness` lays out the OpenClaw-shaped runtime
(versioned installs, `current` link, supervisor, health script). This module adds what a bench
needs beyond a test: a state database listing the hosts as agents, putting every host back to
the old version between measured runs, and running a command sequence on one host directly
(inside its mount namespace, no SSH) to time the bare per-host work.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fatctl.config import Settings
from fatctl.remote.commands.upgrade import BoxLayout, restart
from fatctl.remote.fanout import fan_out
from tests.fixtures.sshd import SshHost, SshIdentity, sshd_fleet, throwaway_identity
from tests.integration.rollout import harness

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@dataclass
class BenchFleet:
    """Running hosts serving harness.OLD, the state database that lists them, and the layout."""

    identity: SshIdentity
    hosts: list[SshHost]
    layout: BoxLayout
    engine: Engine
    settings: Settings
    workdir: Path


def _state_db(hosts: list[SshHost], workdir: Path) -> tuple[Engine, Settings]:
    from fatctl.state.db import make_engine
    from fatctl.state.migrate import upgrade

    # The fixture's own row writer, so the bench's agents look exactly like the tests' ones.
    from tests.fixtures.sshd import _insert_agents

    url = f"sqlite:///{workdir / 'fatctl.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    _insert_agents(engine, hosts)
    ident = hosts[0].identity
    settings = Settings(
        data_dir=workdir,
        database_url=url,
        operator_user=ident.operator,
        operator_key_file=ident.key_file,
        ssh_port=str(hosts[0].port),
        customer_user=ident.customer,
    )
    return engine, settings


@contextmanager
def bench_fleet(n: int) -> Iterator[BenchFleet]:
    """`n` real sshd hosts with the harness runtime, OLD serving; everything stopped at the end."""
    with ExitStack() as stack:
        identity = stack.enter_context(throwaway_identity())
        make = stack.enter_context(sshd_fleet(identity))
        workdir = Path(tempfile.mkdtemp(prefix="bench-rollout-", dir=identity.workdir))
        artifacts = harness.make_artifacts(workdir)
        hosts = make(n)
        stack.callback(_stop_gateways, hosts)
        for host in hosts:
            harness.install_box(host, artifacts)
        layout = harness.layout(identity.operator)
        engine, settings = _state_db(hosts, workdir)
        stack.callback(engine.dispose)
        fleet = BenchFleet(identity, hosts, layout, engine, settings, workdir)
        restart_all(fleet, hosts)
        yield fleet


def _stop_gateways(hosts: list[SshHost]) -> None:
    for host in hosts:
        harness.stop_gateway(host)


def restart_all(fleet: BenchFleet, hosts: list[SshHost]) -> None:
    """Run the supervisor on every host over SSH (the gateway must live in the host's namespace)."""
    targets = [h.target(connect_timeout=30.0) for h in hosts]
    started = fan_out(targets, restart(fleet.layout), parallel=10, timeout=60)
    bad = [r.as_dict() for r in started if not r.ok]
    if bad:
        raise RuntimeError(f"could not (re)start the gateway: {bad[:2]}")


def reset(fleet: BenchFleet, hosts: list[SshHost]) -> None:
    """Put `hosts` back to OLD serving: NEW removed, `current` -> OLD, events cleared, restarted."""
    import shutil

    for host in hosts:
        box = host.home(fleet.identity.operator) / "box"
        shutil.rmtree(box / "opt" / harness.NEW, ignore_errors=True)
        link = box / "opt" / "current"
        link.unlink(missing_ok=True)
        link.symlink_to(harness.OLD)
        harness.chown_tree(box / "opt", fleet.identity.operator)
        (box / "events.log").unlink(missing_ok=True)
    restart_all(fleet, hosts)
    time.sleep(0.2)  # let the restarted gateways settle before the next measured run


def set_install_time(fleet: BenchFleet, seconds: float) -> None:
    """Make every install take `seconds` longer (the harness's `slow-install` knob), to model a
    real package install instead of the harness's copy of a tiny directory."""
    for host in fleet.hosts:
        knob = host.home(fleet.identity.operator) / "box" / "slow-install"
        if seconds > 0:
            knob.write_text(f"{seconds:g}\n")
            os.chmod(knob, 0o644)
        else:
            knob.unlink(missing_ok=True)


def upgraded(hosts: list[SshHost]) -> int:
    """Hosts that really did the work: on NEW, installed once and restarted onto it."""
    done = 0
    for host in hosts:
        log = harness.events(host)
        if harness.current(host) == harness.NEW and f"start {harness.NEW}" in log:
            done += log.count(f"install {harness.NEW}") == 1
    return done


def run_direct(host: SshHost, script: str, timeout: float = 120.0) -> float:
    """Run `script` on `host` as the operator inside its mount namespace; seconds it took."""
    assert host.proc is not None
    user = pwd.getpwnam(host.identity.operator)
    # nsenter sets the ids itself: no PAM session (runuser/su) in the measured time.
    argv = ["nsenter", "-t", str(host.proc.pid), "-m", "-S", str(user.pw_uid)]
    argv += ["-G", str(user.pw_gid), "--", "sh", "-c", script]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"direct run on {host.name} failed: {done.stderr.strip()[-300:]}")
    return took
