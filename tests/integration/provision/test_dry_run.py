"""`provision --dry-run`, `rebuild --dry-run` and `destroy --dry-run` through the real CLI
against the API emulators: the same refusals and plans as a real run, and afterwards the
database, the audit trail and both clouds are exactly as before."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from fatctl.secrets import generate_master_key
from tests.fixtures.cli import fatctl_env, run_fatctl


def _rows(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return repr([(t, sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"')))) for t in tables])


def _servers(hetzner: Any) -> list[str]:
    import httpx

    answer = httpx.get(f"{hetzner.url}/servers",
                       headers={"Authorization": f"Bearer {hetzner.token}"})  # fmt: skip
    return [s["name"] for s in answer.json()["servers"]]


def _images(hetzner: Any) -> list[str]:
    import httpx

    answer = httpx.get(f"{hetzner.url}/images?type=snapshot",
                       headers={"Authorization": f"Bearer {hetzner.token}"})  # fmt: skip
    return [i["description"] for i in answer.json()["images"]]


def test_dry_runs_change_nothing(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any
) -> None:
    db = tmp_path / "cli.sqlite"
    env = fatctl_env(
        FATCTL_DATA_DIR=str(tmp_path), FATCTL_DATABASE_URL=f"sqlite:///{db}",
        FATCTL_MASTER_KEY=generate_master_key(), FATCTL_ENGINE="hcloud",
        HCLOUD_TOKEN=hetzner_emulator.token, HCLOUD_ENDPOINT=hetzner_emulator.url,
        CLOUDFLARE_API_TOKEN=cloudflare_emulator.token, CLOUDFLARE_BASE_URL=cloudflare_emulator.url,
        FATCTL_DOMAIN="sandbox.test", FATCTL_ACTOR="test",
    )  # fmt: skip
    run_fatctl("db", "upgrade", env=env, timeout=120, check=0)
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(tmp_path / "op")],
                   check=True)  # fmt: skip
    run_fatctl("keys", "add", "--operator", "--file", str(tmp_path / "op.pub"), env=env,
               timeout=120, check=0)  # fmt: skip
    provision = ("provision", "newbie", "--owner", "a@example.com", "--no-box")

    before = _rows(db)
    plan = json.loads(run_fatctl(*provision, "--dry-run", "--json", env=env, timeout=120,
                                 check=0).stdout)  # fmt: skip
    assert plan["agent"] == "newbie" and plan["state"] == "new"
    assert plan["steps"]["infra"] == "run" and plan["steps"]["ssh"] == "skipped"
    assert {"kind": "server", "action": "create"}.items() <= next(
        r for r in plan["resources"] if r["kind"] == "server"
    ).items()
    assert plan["user_data_bytes"] > 1000
    assert _rows(db) == before, "a dry run wrote to the database"
    assert _servers(hetzner_emulator) == []

    # The same refusals as a real run: a BYOK agent without its key.
    byok = run_fatctl("provision", "keyless", "--owner", "b@example.com", "--plan", "byok",
                      "--dry-run", env=env, timeout=120, check=2)  # fmt: skip
    assert "needs its key" in byok.stderr and _rows(db) == before

    run_fatctl(*provision, env=env, timeout=300, check=0)
    assert _servers(hetzner_emulator) == ["newbie"]
    before = _rows(db)
    again = json.loads(run_fatctl(*provision, "--dry-run", "--json", env=env, timeout=120,
                                  check=0).stdout)  # fmt: skip
    assert again["state"] == "provisioning" and again["steps"]["infra"] == "kept"

    rebuilt = json.loads(run_fatctl("rebuild", "newbie", "--dry-run", "--json", env=env,
                                    timeout=120, check=0).stdout)  # fmt: skip
    assert rebuilt["server_id"] and rebuilt["disk"] == "would be wiped"
    assert _rows(db) == before and _images(hetzner_emulator) == []  # no pre-rebuild snapshot

    gone = json.loads(run_fatctl("destroy", "newbie", "--dry-run", "--json", env=env,
                                 timeout=120, check=0).stdout)  # fmt: skip
    actions = {(r["kind"], r["action"]) for r in gone["resources"]}
    assert ("server", "delete") in actions and ("dns_record", "delete") in actions
    assert ("primary_ip", "same") in actions  # kept unless --release-ips
    assert _rows(db) == before and _servers(hetzner_emulator) == ["newbie"]
    shown = run_fatctl("destroy", "newbie", "--dry-run", env=env, timeout=120, check=0).stdout
    assert "dry run: nothing changed" in shown
