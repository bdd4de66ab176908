"""`--log-file` / FATCTL_LOG_FILE and `-v` through real `fatctl` processes: an API call to the
Hetzner emulator and an SSH command to a real sshd are recorded, and the secrets that passed
through them (the token in a header, a value assigned in the command) are masked."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from tests.fixtures.cli import fatctl_env, run_fatctl


def test_api_call_recorded_with_its_token_masked(hetzner_emulator: Any, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    env = fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path / "data"),
        HCLOUD_TOKEN=hetzner_emulator.token,
        HCLOUD_ENDPOINT=hetzner_emulator.url,
        FATCTL_LOG_FILE=str(log),
    )
    quiet = run_fatctl("box", "api", "--json", env=env, timeout=120, check=0)
    assert quiet.stderr == ""  # a log file alone shows nothing on the terminal
    text = log.read_text()
    assert f"GET {hetzner_emulator.url}/servers?label_selector=" in text
    assert " -> 200 (" in text and " ms)" in text
    assert "Authorization: Bearer ***" in text
    assert hetzner_emulator.token not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600

    shown = run_fatctl("box", "api", "-v", env=env, timeout=120, check=0)
    calls = [line for line in shown.stderr.splitlines() if line.startswith("fatctl.api: GET ")]
    assert calls and all(" -> 200 (" in line for line in calls)
    assert hetzner_emulator.token not in shown.stderr + log.read_text()


def test_ssh_command_recorded_with_assigned_secret_masked(
    sshd_hosts: Any, fleet_db: Any, tmp_path: Path
) -> None:
    fleet = fleet_db(sshd_hosts(1))
    log = tmp_path / "ssh.log"
    # API_KEY's value has a credential's name; PAYLOAD's is masked only as an assignment.
    secret, payload = "pk-3c1d5e7f9a0b2c4d", "hunter2-d41d8cd98f"
    command = f"API_KEY={secret} PAYLOAD={payload} sh -c 'test -n \"$PAYLOAD\" && echo ran'"
    env = fatctl_env(fleet.env)
    proc = run_fatctl(
        "exec", "--agents", "box1", "--log-file", str(log), "--", command,
        env=env, timeout=120, check=0,
    )  # fmt: skip
    assert "box1 | ran" in proc.stdout and "fatctl.ssh" not in proc.stderr
    text = log.read_text()
    where = f"{fleet.hosts[0].identity.operator}@box1 (127.0.10.1)"
    assert f"{where}: API_KEY=*** PAYLOAD=*** sh -c" in text
    assert " -> exit 0 (" in text
    assert secret not in text and payload not in text

    shown = run_fatctl("-v", "exec", "--agents", "box1", "--", command, env=env, timeout=120)
    assert "fatctl.ssh: " in shown.stderr and "PAYLOAD=***" in shown.stderr
    assert secret not in shown.stderr and payload not in shown.stderr
