"""`fatctl suspend`, `resume` and `archive` as an operator runs them, against the API emulators
(no box): bad input is one line and exit 2 with nothing changed, `--json` ends in one
`<op>.result` event, and `fatctl cost --json` shows the suspended agent's state and what it
still costs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.fixtures.sshd import keygen


def cli_env(tmp_path: Path, hetzner: Any, cloudflare: Any) -> dict[str, str]:
    from fatctl.secrets import generate_master_key

    return fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path), FATCTL_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite'}",
        FATCTL_MASTER_KEY=generate_master_key(), FATCTL_ENGINE="hcloud",
        HCLOUD_TOKEN=hetzner.token, HCLOUD_ENDPOINT=hetzner.url,
        CLOUDFLARE_API_TOKEN=cloudflare.token, CLOUDFLARE_BASE_URL=cloudflare.url,
        FATCTL_DOMAIN="sandbox.test", FATCTL_POLL_INTERVAL="0",
    )  # fmt: skip


def operator_cli(
    tmp_path: Path, hetzner: Any, cloudflare: Any
) -> tuple[Callable[..., Any], dict[str, str]]:
    """`fatctl` against the emulators, its database migrated and an operator key added, and
    its environment."""
    env = cli_env(tmp_path, hetzner, cloudflare)

    def fatctl(*args: str, check: int = 0) -> Any:
        return run_fatctl(*args, env=env, timeout=180, check=check)

    fatctl("db", "upgrade")
    pub = keygen(tmp_path / "operator", "operator@test")
    (tmp_path / "operator.pub").write_text(pub + "\n")
    fatctl("keys", "add", "--operator", "--file", str(tmp_path / "operator.pub"), "--label", "op")
    return fatctl, env


def test_suspend_and_resume_from_the_cli(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any
) -> None:
    fatctl, env = operator_cli(tmp_path, hetzner_emulator, cloudflare_emulator)
    fatctl("provision", "napper", "--owner", "nap@example.com", "--no-box")
    writes = hetzner_emulator.stats()["total"]

    # Bad input: one line on stderr, exit 2, nothing sent to Hetzner.
    for args, says in (
        (("suspend", "napper", "--no-box", "--yes"), "pass --no-backup"),
        (("resume", "napper", "--no-box"), "resume needs it suspended"),
        (("archive", "napper", "--dry-run", "--yes"), "--dry-run is for `fatctl archive purge`"),
        (("suspend", "Not_A_Name", "--no-box", "--no-backup", "--yes"), "agent"),
    ):
        refused = fatctl(*args, check=2)
        assert refused.stderr.count("\n") == 1 and says in refused.stderr, (args, refused.stderr)
    assert hetzner_emulator.stats()["total"] == writes

    out = fatctl("suspend", "napper", "--no-box", "--no-backup", "--yes", "--json").stdout
    done = json.loads(out.strip().splitlines()[-1])
    assert (done["event"], done["agent"], done["state"]) == ("suspend.result", "napper",
                                                             "suspended")  # fmt: skip
    assert [s["step"] for s in done["steps"]] == ["backup", "snapshot", "infra", "state"]

    cost = json.loads(fatctl("cost", "--json").stdout)
    (held,) = cost["agents"]
    assert (held["state"], held["server"], held["cost"]) == ("suspended", "0.0000", "0.5000")

    out = fatctl("resume", "napper", "--no-box", "--json").stdout
    done = json.loads(out.strip().splitlines()[-1])
    assert (done["event"], done["state"]) == ("resume.result", "provisioning")

    # A purge reaches R2 and the database only: no Hetzner token needed.
    no_hetzner = {k: v for k, v in env.items() if k != "HCLOUD_TOKEN"}
    listed = run_fatctl("archive", "purge", "--dry-run", "--json", env=no_hetzner, timeout=120,
                        check=0)  # fmt: skip
    assert json.loads(listed.stdout) == []
