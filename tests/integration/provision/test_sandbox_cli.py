"""The commands as a user runs them, in subprocesses: `fatctl sandbox up --no-boxes` (API only,
no root), then provision/status/destroy through the env file it writes, then `sandbox down`
stops every process it started (by pid). Also the one-line errors for bad input.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fatctl.sandbox.apiemu import pids
from tests.fixtures.cli import fatctl_env, run_fatctl


def fatctl(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, timeout=300, check=code)


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_sandbox_up_provision_status_destroy_down(tmp_path: Path) -> None:
    from fatctl.secrets import generate_master_key

    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path))
    fatctl(env, "sandbox", "up", "--no-boxes")
    env_file = tmp_path / "sandbox" / "sandbox.env"
    try:
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        sandbox = read_env(env_file)
        assert sandbox["FATCTL_DOMAIN"] == "sandbox.test" and sandbox["FATCTL_ENGINE"] == "hcloud"
        assert len(sandbox["CLOUDFLARE_ZONE_ID"]) == 32  # no process has to look the zone up
        running = json.loads(fatctl(env, "sandbox", "status", "--json").stdout)
        started = {r["component"]: r["pid"] for r in running}
        assert all(isinstance(started[c], int) for c in ("hetzner", "cloudflare", "s3")), started

        env.update(sandbox, FATCTL_MASTER_KEY=generate_master_key())
        fatctl(env, "db", "upgrade")
        fatctl(
            env, "keys", "add", "--operator", "--file", sandbox["FATCTL_OPERATOR_KEY_FILE"] + ".pub"
        )
        out = fatctl(
            env, "provision", "cli-agent", "--owner", "demo@example.com", "--no-box", "--json"
        )
        events = [json.loads(line) for line in out.stdout.splitlines()]
        done = [e["step"] for e in events if e["event"] == "step.done"]
        assert done == ["material", "render", "dns", "infra"], done
        result = events[-1]
        assert result["event"] == "provision.result" and result["ipv4"]

        rows = json.loads(fatctl(env, "status", "--json").stdout)
        assert rows[0]["agent"] == "cli-agent" and rows[0]["cloud"].startswith("running")

        bad = fatctl(env, "provision", "BAD NAME", "--owner", "x@example.com", code=2)
        assert bad.stderr.count("\n") == 1 and "fatctl: error:" in bad.stderr
        refused = fatctl(env, "destroy", "cli-agent", code=2)  # CI, no --yes: refused
        assert "--yes" in refused.stderr
        fatctl(env, "destroy", "cli-agent", "--yes")
        rows = json.loads(fatctl(env, "status", "--json").stdout)
        assert rows[0]["state"] == "destroyed" and rows[0]["cloud"] == "-"
    finally:
        stopped = fatctl(env, "sandbox", "down").stdout
    assert "hetzner" in stopped and "cloudflare" in stopped and "s3" in stopped
    assert not any(pids.runs(pid, "python") for pid in started.values() if isinstance(pid, int))
    assert not env_file.exists()
