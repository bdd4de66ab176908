"""Two (or eight) fatctl runs on one agent, on SQLite and PostgreSQL, as real processes.

- The lease primitive under a hammer: N processes take and release one lease many times and
  log entry/exit to one file; any interleaving is a double holder.
- `fatctl provision` (API-only, against the emulators) contending for one agent: without
  `--wait` every loser fails cleanly (exit 1, one line naming the holder, a `--wait` hint);
  with `--wait` each loser says once that it waits and all finish, one after another (the
  intervals between each run's `reserve` and its last step, from its own `--json` events,
  never overlap).
- A holder killed with SIGKILL inside a side effect: the next run takes over at once (the dead
  pid is seen); a holder on another host: only after its lease expires.
Counts go to the `figure` summary.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fatctl.errors import LeaseHeld
from fatctl.state.leases import free_ones, lease, read
from tests.fixtures.cli import fatctl_env, start_fatctl

N = 8
WAIT = "300"  # generous: 2 shared cores, 8 Python start-ups
Figure = Callable[..., None]


@dataclass
class Outcome:
    rc: int
    events: list[dict[str, Any]]
    stderr: str

    @property
    def waited(self) -> bool:
        return "fatctl: waiting for agent:" in self.stderr

    def held(self) -> tuple[datetime, datetime] | None:
        """From the run's `reserve` event to its last step event: all of it under the lease."""
        steps = [e for e in self.events if e["event"].startswith("step.")]
        start = [e for e in steps if e.get("step") == "reserve"]
        if not start:
            return None
        return datetime.fromisoformat(start[0]["ts"]), datetime.fromisoformat(steps[-1]["ts"])


class Spawned:
    def __init__(self, env: dict[str, str], tmp: Path, tag: str, *args: str) -> None:
        self.out, self.err = tmp / f"{tag}.out", tmp / f"{tag}.err"
        with self.out.open("w") as fo, self.err.open("w") as fe:
            self.proc = start_fatctl(*args, "--json", env=env, stdout=fo, stderr=fe)

    def finish(self, timeout: float = 600) -> Outcome:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        lines = [json.loads(ln) for ln in self.out.read_text().splitlines() if ln.strip()]
        # A refused run ends its event stream with the JSON error document ({"error": ...}).
        return Outcome(rc, [e for e in lines if "event" in e], self.err.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    made: list[Spawned] = []

    def start(env: dict[str, str], tag: str, *args: str) -> Spawned:
        made.append(Spawned(env, tmp_path, tag, *args))
        return made[-1]

    yield start
    for s in made:  # only what this test started, by its own handle
        s.stop()


@pytest.fixture
def cli(tmp_path: Path, db_url: str, hetzner_emulator: Any, cloudflare_emulator: Any) -> Any:
    """Environment for `fatctl` on `db_url` against the emulators, with an operator key."""
    from fatctl.domain import KeyRole
    from fatctl.secrets import generate_master_key
    from fatctl.services.agents.keys import add_key
    from fatctl.state import migrate
    from fatctl.state.db import make_engine
    from tests.fixtures.sshd import keygen

    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    add_key(engine, role=KeyRole.OPERATOR, public_key=keygen(tmp_path / "operator", "op@test"),
            label="op", agent=None, actor="test")  # fmt: skip
    env = fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path / "data"), FATCTL_DATABASE_URL=db_url,
        FATCTL_MASTER_KEY=generate_master_key(), HCLOUD_TOKEN=hetzner_emulator.token,
        HCLOUD_ENDPOINT=hetzner_emulator.url, CLOUDFLARE_API_TOKEN=cloudflare_emulator.token,
        CLOUDFLARE_BASE_URL=cloudflare_emulator.url,
        CLOUDFLARE_ACCOUNT_ID=cloudflare_emulator.account_id, FATCTL_DOMAIN="sandbox.test",
        FATCTL_ENGINE="hcloud", FATCTL_POLL_INTERVAL="0", FATCTL_API_RETRIES="6",
        FATCTL_OPERATOR_KEY_FILE=str(tmp_path / "operator"),
    )  # fmt: skip
    yield type("Cli", (), {"env": env, "engine": engine, "hetzner": hetzner_emulator})
    engine.dispose()


def provision_args(agent: str, *extra: str) -> tuple[str, ...]:
    return ("provision", agent, "--owner", "ops@example.com", "--no-box", *extra)


def clean_busy(o: Outcome) -> bool:
    """Exit 1 and exactly one error line that names the holder; never a traceback."""
    errors = [ln for ln in o.stderr.splitlines() if not ln.startswith("fatctl: waiting for")]
    return (
        o.rc == 1
        and len(errors) == 1
        and errors[0].startswith("fatctl: error: agent:")
        and "is busy: held by pid " in errors[0]
        and " since " in errors[0]
    )


def overlaps(outcomes: list[Outcome]) -> int:
    """How many runs began their leased part before the previous one had ended it."""
    spans = sorted(h for o in outcomes if (h := o.held()) is not None)
    return sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])


def report(figure: Figure, what: str, outcomes: list[Outcome]) -> dict[str, int]:
    counts = {
        "processes": len(outcomes),
        "proceeded": sum(o.rc == 0 for o in outcomes),
        "waited": sum(o.waited for o in outcomes),
        "failed cleanly": sum(clean_busy(o) for o in outcomes),
        "tracebacks": sum("Traceback" in o.stderr for o in outcomes),
        "double holders": overlaps(outcomes),
    }
    for label, value in counts.items():
        figure(f"{what}: {label}", value)
    return counts


def wait_for_text(path: Path, text: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{path.name} never said {text!r}"
        time.sleep(0.05)


HAMMER = textwrap.dedent("""
    import os, sys, time
    from fatctl.pacing.poll import Poll
    from fatctl.state.db import make_engine
    from fatctl.state.leases import lease
    engine = make_engine(sys.argv[1])
    for _ in range(int(sys.argv[3])):
        with lease(engine, "agent:hammer", ttl_s=60, wait_s=300, poll=Poll(0.01)):
            fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
            os.write(fd, f"in {os.getpid()}\\n".encode())
            time.sleep(0.005)
            os.write(fd, f"out {os.getpid()}\\n".encode())
            os.close(fd)
""")


def test_lease_hammer_never_has_two_holders(
    db_url: str, migrated_engine: Any, tmp_path: Path, figure: Figure
) -> None:
    log = tmp_path / "critical.log"
    log.touch()
    rounds = 15
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, db_url, str(log), str(rounds)],
                              stderr=subprocess.PIPE, text=True) for _ in range(N)]  # fmt: skip
    try:
        errs = [p.communicate(timeout=600)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0] * N, errs
    tokens = log.read_text().split()
    entries = list(zip(tokens[0::2], tokens[1::2], strict=True))  # (in|out, pid)
    sections = list(zip(entries[0::2], entries[1::2], strict=True))
    double = sum(1 for (kin, pin), (kout, pout) in sections
                 if (kin, kout) != ("in", "out") or pin != pout)  # fmt: skip
    figure("hammer: processes x rounds", f"{N}x{rounds}")
    figure("hammer: critical sections", len(sections))
    figure("hammer: double holders", double)
    assert len(sections) == N * rounds and double == 0


def test_heartbeat_renews_and_a_takeover_is_reported(migrated_engine: Any) -> None:
    with lease(migrated_engine, "agent:beat", ttl_s=3) as holder:
        first = read(migrated_engine, "agent:beat")
        time.sleep(4.5)  # past the 3 s window: only the heartbeat keeps it
        later = read(migrated_engine, "agent:beat")
        assert first and later and later.holder == holder
        assert later.expires_at > first.expires_at
        busy = pytest.raises(LeaseHeld, match="agent:beat is busy: held by pid")
        with busy, lease(migrated_engine, "agent:beat"):
            pass
    assert read(migrated_engine, "agent:beat") is None  # released
    from sqlalchemy import update

    from fatctl.state.models import Lease

    table = Lease.__table__  # type: ignore[attr-defined]
    lost = pytest.raises(LeaseHeld, match="agent:stolen was taken over by pid 1 on host elsewhere")
    with lost, lease(migrated_engine, "agent:stolen", ttl_s=3):
        with migrated_engine.begin() as conn:  # as if we had been stopped past expiry
            conn.execute(update(table).values(holder="elsewhere:1:x"))
        time.sleep(1.5)


def test_a_wave_takes_its_free_box_leases_together_and_leaves_the_busy_ones(
    migrated_engine: Any,
) -> None:
    names = ["agent:w1", "agent:w2", "agent:w3"]
    with lease(migrated_engine, "agent:w2") as other:
        with free_ones(migrated_engine, names, ttl_s=3) as taken:
            assert taken == {"agent:w1", "agent:w3"}
            rows = {n: read(migrated_engine, n) for n in names}
            assert all(rows.values())
            holders = {n: row.holder for n, row in rows.items() if row}
            assert holders["agent:w2"] == other  # the busy one is untouched
            assert holders["agent:w1"] == holders["agent:w3"] != other
            with (
                pytest.raises(LeaseHeld, match="agent:w3 is busy"),
                lease(migrated_engine, "agent:w3"),
            ):
                pass
            time.sleep(4.5)  # past the 3 s window: one heartbeat renews both
            assert read(migrated_engine, "agent:w1") is not None
        left = [n for n in names if read(migrated_engine, n) is not None]
        assert left == ["agent:w2"]  # released together, the busy one still its holder's
    from sqlalchemy import update

    from fatctl.state.models import Lease

    table = Lease.__table__  # type: ignore[attr-defined]
    lost = pytest.raises(LeaseHeld, match="one of agent:w1, agent:w2, agent:w3 was taken over")
    with lost, free_ones(migrated_engine, names, ttl_s=3):  # all free now: all taken
        with migrated_engine.begin() as conn:  # as if we had been stopped past expiry
            conn.execute(update(table).where(table.c.name == "agent:w3").values(holder="x:1:y"))
        time.sleep(1.5)


def test_shared_lease_is_lent_to_inner_takers_a_plain_one_is_not(migrated_engine: Any) -> None:
    with lease(migrated_engine, "agent:outer", shared=True) as outer:
        with lease(migrated_engine, "agent:outer") as inner:
            assert inner == outer
        assert read(migrated_engine, "agent:outer") is not None  # the inner exit kept it
    busy = pytest.raises(LeaseHeld, match="agent:plain is busy")
    with lease(migrated_engine, "agent:plain"), busy, lease(migrated_engine, "agent:plain"):
        pass


def test_provision_contention_without_and_with_wait(
    cli: Any, spawn: Callable[..., Spawned], figure: Figure
) -> None:
    env = cli.env
    assert spawn(env, "first", *provision_args("shared")).finish().rc == 0
    # A holder we control (this process, alive on this host) makes the contention certain.
    with lease(cli.engine, "agent:shared"):
        runs = [spawn(env, f"nowait{i}", *provision_args("shared")) for i in range(N)]
        refused = [r.finish() for r in runs]
    counts = report(figure, "no --wait, agent held", refused)
    assert counts["failed cleanly"] == N and counts["tracebacks"] == 0, refused[0].stderr
    assert all(f"pid {os.getpid()} on host" in o.stderr and "--wait" in o.stderr for o in refused)

    with lease(cli.engine, "agent:shared"):
        runs = [spawn(env, f"wait{i}", *provision_args("shared", "--wait", WAIT)) for i in range(N)]
        for r in runs:  # every one is queued behind us before we let go
            wait_for_text(r.err, "fatctl: waiting for agent:shared")
    queued = [r.finish() for r in runs]
    counts = report(figure, "--wait, agent held", queued)
    assert counts["proceeded"] == N and counts["waited"] == N, [o.stderr for o in queued]
    assert all(o.stderr.count("waiting for") == 1 for o in queued)
    assert counts["tracebacks"] == 0 and counts["double holders"] == 0
    assert all(o.held() for o in queued)


def test_provision_free_for_all_on_a_new_agent(
    cli: Any, spawn: Callable[..., Spawned], figure: Figure
) -> None:
    """Runs start together on an agent nobody has created yet: no lease held by the test.

    Half of N per round: the held-lease test above already runs N, and each process costs
    seconds of CPU on a shared machine."""
    n = N // 2
    nowait = [spawn(cli.env, f"race{i}", *provision_args("fresh")) for i in range(n)]
    raced = [r.finish() for r in nowait]
    counts = report(figure, "new agent, no --wait", raced)
    assert counts["tracebacks"] == 0 and counts["double holders"] == 0
    assert counts["proceeded"] >= 1
    assert counts["proceeded"] + counts["failed cleanly"] == n, [o.stderr for o in raced]
    waits = [spawn(cli.env, f"w{i}", *provision_args("fresh2", "--wait", WAIT)) for i in range(n)]
    queued = [r.finish() for r in waits]
    counts = report(figure, "new agent, --wait", queued)
    assert counts["proceeded"] == n and counts["tracebacks"] == 0, [o.stderr for o in queued]
    assert counts["double holders"] == 0
    assert len([s for s in cli.hetzner.inventory()["servers"] if s["name"] == "fresh2"]) == 1


def test_killed_holder_is_taken_over_at_once(
    cli: Any, spawn: Callable[..., Spawned], tmp_path: Path, figure: Figure
) -> None:
    marker = tmp_path / "held.marker"
    cli.hetzner.set_faults(hold_match="^POST ", hold_nth=1, hold_marker=str(marker),
                           hold_seconds=120)  # fmt: skip
    victim = spawn(cli.env, "victim", *provision_args("victim"))
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():  # inside its first Hetzner write, so inside the lease
            assert victim.proc.poll() is None and time.monotonic() < deadline, victim.err
            time.sleep(0.01)
        held = read(cli.engine, "agent:victim")
        assert held and held.holder.split(":")[1] == str(victim.proc.pid)
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
    finally:
        cli.hetzner.clear_faults()
    after = spawn(cli.env, "after", *provision_args("victim")).finish()
    figure("SIGKILLed holder: next run exit code", after.rc)
    assert after.rc == 0 and not after.waited and "Traceback" not in after.stderr, after.stderr
    assert read(cli.engine, "agent:victim") is None


def test_foreign_holder_only_after_expiry(
    cli: Any, spawn: Callable[..., Spawned], figure: Figure
) -> None:
    from sqlalchemy import insert, update

    from fatctl.state.models import Lease

    assert spawn(cli.env, "first", *provision_args("far")).finish().rc == 0
    now = datetime.now(UTC)
    table = Lease.__table__  # type: ignore[attr-defined]
    with cli.engine.begin() as conn:  # pid 4242 is alive or not: on another host we cannot know
        conn.execute(insert(table).values(
            name="agent:far", holder="ci-runner-9.example:4242:feedbeef",
            acquired_at=now, expires_at=now + timedelta(hours=1)))  # fmt: skip
    refused = spawn(cli.env, "refused", *provision_args("far")).finish()
    assert clean_busy(refused), refused.stderr
    assert "pid 4242 on host ci-runner-9.example" in refused.stderr
    waiter = spawn(cli.env, "waited", *provision_args("far", "--wait", WAIT))
    wait_for_text(waiter.err, "fatctl: waiting for agent:far")
    expires = datetime.now(UTC) + timedelta(seconds=3)  # as if the hour had nearly passed
    with cli.engine.begin() as conn:
        conn.execute(update(table).values(expires_at=expires))
    waited = waiter.finish()
    assert waited.rc == 0 and waited.stderr.count("waiting for agent:far") == 1, waited.stderr
    span = waited.held()
    assert span is not None and span[0] >= expires  # it went on only once the lease expired
    figure("foreign holder: taken after expiry, late by", (span[0] - expires).total_seconds(), "s")
