"""Run an emulator as its own process (`python -m fatctl.sandbox.<name>`) and find it again
from its state dir: what `fatctl sandbox up/down/status` and process-level benchmarks need.

The child writes `<state_dir>/<name>.endpoint.json` (url, admin_url, token, pid; mode 0600).
Stopping checks that the pid still runs that emulator module before signalling it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fatctl.sandbox.apiemu import pids

MODULES = {
    "hetzner": "fatctl.sandbox.hetzner",
    "cloudflare": "fatctl.sandbox.cloudflare",
    "world": "fatctl.sandbox.world",
}


@dataclass(frozen=True)
class Spawned:
    name: str
    pid: int
    info: dict[str, Any]  # url, admin_url, token, (cloudflare) account_id and zones
    state_dir: Path

    def stop(self, timeout: float = 15.0) -> bool:
        return stop_emulator(self.name, self.state_dir, timeout)


def _endpoint(name: str, state_dir: Path) -> Path:
    return state_dir / f"{name}.endpoint.json"


def spawn_emulator(name: str, state_dir: Path, *args: str, timeout: float = 30.0) -> Spawned:
    """Start the emulator process and wait for its endpoint file. `args` are extra flags,
    e.g. ("--port", "8080", "--action-delay", "1")."""
    state_dir.mkdir(parents=True, exist_ok=True)
    _endpoint(name, state_dir).unlink(missing_ok=True)
    log = open(state_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULES[name], "--state-dir", str(state_dir), *args],
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find_emulator(name, state_dir)
        if found is not None and found.pid == proc.pid:
            return found
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} emulator exited with status {proc.returncode}; "
                f"see {state_dir / (name + '.log')}"
            )
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"{name} emulator did not start within {timeout:.0f}s")


def find_emulator(name: str, state_dir: Path) -> Spawned | None:
    try:
        info = json.loads(_endpoint(name, state_dir).read_text())
    except (OSError, ValueError):
        return None
    pid = int(info.pop("pid", 0))
    if not pids.runs(pid, MODULES[name]):
        return None
    return Spawned(name, pid, info, state_dir)


def stop_emulator(name: str, state_dir: Path, timeout: float = 15.0) -> bool:
    """SIGTERM the emulator of this state dir and wait for it; False if none was running."""
    found = find_emulator(name, state_dir)
    if found is None:
        return False
    pids.terminate(found.pid, MODULES[name], timeout)
    _endpoint(name, state_dir).unlink(missing_ok=True)
    return True
