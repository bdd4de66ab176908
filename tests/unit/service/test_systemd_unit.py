"""The systemd unit shipped for `fatctl serve` (fatctl/service/systemd/fatctl-serve.service).

Checked with the real systemd tools, offline (PID 1 here is not systemd, and neither needs it):
`systemd-analyze verify` loads the unit as systemd would and names every unknown key, bad
value and missing executable on stderr (it exits 0 on a bad value, 1 only on a missing
command: so stderr must be empty too); `systemd-analyze security --offline=true` scores the
sandboxing, and `--threshold` fails past it. The unit's ExecStart names where the docs install
fatctl (/opt/fatctl); the test points it at this machine's fatctl so verify can find it.
"""

from __future__ import annotations

import configparser
import fnmatch
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "fatctl" / "service" / "systemd" / "fatctl-serve.service"
ANALYZE = shutil.which("systemd-analyze")
# systemd's exposure score, times ten (1.4 prints as "1.4 OK"); a unit without the sandboxing
# scores 9.2 ("UNSAFE").
EXPOSURE_THRESHOLD = 20

needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def directives() -> dict[str, list[str]]:
    """Every `Key=value` of the [Service] section, repeated keys kept in order."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def runnable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this machine's fatctl (verify checks it exists)."""
    here = shutil.which("fatctl") or sys.executable
    path = tmp_path / UNIT.name
    path.write_text(UNIT.read_text().replace("/opt/fatctl/bin/fatctl", here))
    return path


@needs_analyze
def test_systemd_analyze_verify_finds_nothing_wrong(tmp_path: Path) -> None:
    proc = subprocess.run([str(ANALYZE), "verify", str(runnable_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


@needs_analyze
def test_verify_would_catch_a_bad_directive(tmp_path: Path) -> None:
    """The check above can fail: verify names a misspelt key and a bad value."""
    bad = runnable_copy(tmp_path)
    bad.write_text(bad.read_text().replace("Restart=on-failure", "Restart=sometimes")
                   .replace("NoNewPrivileges=yes", "NoNewPrivilegez=yes"))  # fmt: skip
    proc = subprocess.run([str(ANALYZE), "verify", str(bad)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert "sometimes" in proc.stderr and "NoNewPrivilegez" in proc.stderr


@needs_analyze
def test_sandboxing_keeps_the_exposure_low(tmp_path: Path) -> None:
    proc = subprocess.run([str(ANALYZE), "security", "--offline=true",
                           f"--threshold={EXPOSURE_THRESHOLD}", str(runnable_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-1500:]


def test_the_unit_runs_serve_as_its_user_and_restarts_on_failure() -> None:
    found = directives()
    assert found["User"] == ["fatctl"] and found["Group"] == ["fatctl"]
    assert found["EnvironmentFile"] == ["/etc/fatctl/serve.env"]
    assert found["Restart"] == ["on-failure"]
    assert found["KillSignal"] == ["SIGTERM"]  # serve stops DBOS on it and exits 0
    assert found["ExecStart"] == ["/opt/fatctl/bin/fatctl serve --host 127.0.0.1 --port 8077"]
    assert found["NoNewPrivileges"] == ["yes"] and found["ProtectSystem"] == ["strict"]
    assert found["StateDirectory"] == ["fatctl"]
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_the_unit_is_package_data() -> None:
    """pyproject's package-data for `fatctl` matches the unit, so the wheel carries it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["fatctl"]
    relative = UNIT.relative_to(ROOT / "fatctl").as_posix()
    assert any(fnmatch.fnmatch(relative, p) for p in patterns), patterns
