"""Run the real `fatctl` CLI as a subprocess against the API emulators and SIGKILL it at a
chosen moment: when the Nth event of its `--json` stream arrives (a step boundary), or while
the Nth mutating request to one emulator is held after being applied (inside a side effect).

Boxes are not booted: provisioning runs with `--no-box` as in tests/integration/provision, so
the flow ends after infra + DNS (state `provisioning`, last step `dns`). Real nspawn boxes take
4-30 s each to boot, far too slow for dozens of kills on a shared 2-core machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fatctl.sensitive import Sensitive
from tests.fixtures.cli import fatctl_env, start_fatctl

DOMAIN = "sandbox.test"
RUN_TIMEOUT_S = 240.0
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class KillAt:
    """When to kill: at event number `event` (0-based), or at the `nth` mutating request to
    `cloud` ("hetzner" or "cloudflare") once the emulator has applied it."""

    event: int | None = None
    cloud: str = ""
    nth: int = 0
    match: str = "^(POST|PUT|PATCH|DELETE) "  # which writes count (regex on "METHOD /path")
    on: str = ""  # or at the first event named so, e.g. "step.start:secrets"

    def label(self) -> str:
        if self.on:
            return self.on
        if self.event is not None:
            return f"event #{self.event}"
        return f"{self.cloud} write #{self.nth} matching {self.match!r}"


@dataclass
class Run:
    rc: int | None  # None when killed
    events: list[dict[str, Any]]
    stderr: str
    killed: bool

    def steps(self) -> list[str]:
        return [_named(e) for e in self.events]


@dataclass
class Lab:
    """A control plane (SQLite, key ring with a known master key, operator key) on emulators."""

    tmp: Path
    hetzner: Any
    cloudflare: Any
    db: Any
    ring: Any
    settings: Any
    env: dict[str, str] = field(default_factory=dict)

    def cloud(self, name: str) -> Any:
        return self.hetzner if name == "hetzner" else self.cloudflare

    def fatctl(self, *args: str, kill: KillAt | None = None) -> Run:
        """Run `fatctl ARGS --json`; kill it as `kill` says (if that moment comes)."""
        marker = self.tmp / "held.marker"
        marker.unlink(missing_ok=True)
        if kill is not None and kill.cloud:
            self.cloud(kill.cloud).set_faults(hold_match=kill.match, hold_nth=kill.nth,
                                              hold_marker=str(marker),
                                              hold_seconds=RUN_TIMEOUT_S)  # fmt: skip
        out, err = self.tmp / "run.out", self.tmp / "run.err"
        try:
            with out.open("w") as fo, err.open("w") as fe:
                proc = start_fatctl(*args, "--json", env=self.env, stdout=fo, stderr=fe)
                killed = _watch(proc, out, marker, kill)
        finally:
            if kill is not None and kill.cloud:  # other knobs (slow actions) stay as set
                self.cloud(kill.cloud).set_faults(hold_match="")
        events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        return Run(None if killed else proc.returncode, events, err.read_text(), killed)

    def mutating_calls(self, cloud: str) -> int:
        calls = self.cloud(cloud).stats()["calls"]
        return sum(n for key, n in calls.items() if key.split(" ")[0] in MUTATING)

    def reset_stats(self) -> None:
        self.hetzner.reset_stats()
        self.cloudflare.reset_stats()


def _watch(proc: subprocess.Popen[str], out: Path, marker: Path, kill: KillAt | None) -> bool:
    """Poll the child every few ms; SIGKILL it when the moment comes. True if it was killed."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"fatctl did not finish in {RUN_TIMEOUT_S:g}s")
        if kill is not None and _moment(out, marker, kill):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.003)
    # The moment may have come just as the process finished: then it was not killed.
    return False


def _moment(out: Path, marker: Path, kill: KillAt) -> bool:
    if kill.cloud:
        return marker.exists()
    lines = [ln for ln in out.read_text().split("\n")[:-1] if ln.strip()]  # complete lines only
    if kill.on:
        return any(_named(json.loads(ln)) == kill.on for ln in lines)
    return kill.event is not None and len(lines) > kill.event


def _named(event: dict[str, Any]) -> str:
    return f"{event['event']}:{event.get('step', '')}"


def make_lab(tmp: Path, hetzner: Any, cloudflare: Any) -> Lab:
    from fatctl.domain import KeyRole
    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.services.agents.keys import add_key
    from fatctl.state import migrate
    from fatctl.state.db import make_engine
    from tests.fixtures.sshd import keygen
    from tests.integration.provision.conftest import plane_settings

    settings = plane_settings(tmp, hetzner, cloudflare)
    migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    master = generate_master_key()
    ring = keyring_from(Sensitive(master))
    op_pub = keygen(tmp / "operator", "operator@test")
    add_key(db, role=KeyRole.OPERATOR, public_key=op_pub, label="op", agent=None, actor="test")
    env = fatctl_env(
        FATCTL_DATA_DIR=str(tmp),
        FATCTL_DATABASE_URL=settings.database_url,
        FATCTL_MASTER_KEY=master,
        HCLOUD_TOKEN=hetzner.token,
        HCLOUD_ENDPOINT=hetzner.url,
        CLOUDFLARE_API_TOKEN=cloudflare.token,
        CLOUDFLARE_BASE_URL=cloudflare.url,
        CLOUDFLARE_ACCOUNT_ID=cloudflare.account_id,
        FATCTL_DOMAIN=DOMAIN,
        FATCTL_ENGINE="hcloud",
        FATCTL_POLL_INTERVAL="0.05",  # actions take 0.05 s here: no busy polling
        FATCTL_API_RETRIES="6",
        FATCTL_OPERATOR_KEY_FILE=str(tmp / "operator"),
    )
    return Lab(tmp, hetzner, cloudflare, db, ring, settings, env)
