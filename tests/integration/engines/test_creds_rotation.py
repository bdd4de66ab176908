"""`creds rotate` end to end: credentials from the Cloudflare emulator, delivered over real SSH
to real sshd hosts, stored encrypted with their expiry; fresh ones are left alone."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fatctl.remote.runner import Pool
from fatctl.secrets import keyring_from
from fatctl.sensitive import Sensitive
from fatctl.services.access import select_targets
from fatctl.services.r2_rotation import rotate_r2, stored_expiry
from tests.integration.engines.test_cloudflare import cf_settings

MASTER = Sensitive(base64.b64encode(b"k" * 32).decode())


def test_rotate_delivers_stores_and_skips_fresh(
    sshd_hosts: Any,
    fleet_db: Any,
    cloudflare_emulator: Any,
    tmp_path: Path,
) -> None:
    hosts = sshd_hosts(2)
    fleet = fleet_db(hosts)
    op = hosts[0].identity.operator
    settings = replace(
        cf_settings(cloudflare_emulator, tmp_path),
        database_url=fleet.settings.database_url,
        master_key=MASTER,
        operator_user=fleet.settings.operator_user,
        operator_key_file=fleet.settings.operator_key_file,
        ssh_port=fleet.settings.ssh_port,
    )
    ring = keyring_from(MASTER)
    now = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)
    targets = select_targets(fleet.engine, settings, all_agents=True)
    kw: dict[str, Any] = {"env_path": f"/home/{op}/r2.env", "after": f"touch /home/{op}/restarted"}
    with Pool() as pool:
        first = rotate_r2(fleet.engine, ring, settings, targets, pool, now=now, **kw)
        again = rotate_r2(
            fleet.engine, ring, settings, targets, pool, now=now + timedelta(days=1), **kw
        )
        later = rotate_r2(
            fleet.engine, ring, settings, targets[:1], pool, now=now + timedelta(days=6), **kw
        )
    assert [r.action for r in first] == ["rotated", "rotated"], first
    assert [r.action for r in again] == ["fresh", "fresh"]
    assert [r.action for r in later] == ["rotated"]
    for host in hosts:
        env = (host.home(op) / "r2.env").read_text()
        assert (
            env.startswith("RCLONE_CONFIG_R2_ACCESS_KEY_ID=")
            and "RCLONE_CONFIG_R2_SESSION_TOKEN=" in env
        )
        assert (host.home(op) / "r2.env").stat().st_mode & 0o777 == 0o600
        assert (host.home(op) / "restarted").exists()
    _, agent_id, expiry = stored_expiry(fleet.engine, hosts[1].name)
    assert expiry is not None and expiry > now + timedelta(days=6)
    issued = cloudflare_emulator._emulator.store.all("r2_credential")
    assert len(issued) == 3
    assert {tuple(i["prefixes"]) for i in issued} == {
        (f"agents/{h_id}/",) for h_id in ("id0001", "id0002")
    }
    # The DB holds ciphertext only: the secret access key is nowhere in the file in clear.
    secret = env.split("RCLONE_CONFIG_R2_SECRET_ACCESS_KEY=")[1].split("\n")[0]
    db_file = Path(settings.database_url.removeprefix("sqlite:///"))
    assert secret.encode() not in db_file.read_bytes()
    assert agent_id == "id0002"
