"""`creds rotate` end to end: credentials from the Cloudflare emulator, delivered over real SSH
to real sshd hosts, stored encrypted with their expiry; fresh ones are left alone.

The run's clock is injected and set years away from the wall clock on either side: if any part
of the path (issuance, expiry, freshness, audit) read the real date instead, the "fresh a day
later" or the "due six days later" answer flips for one of the two (the 2026-11 CI failure)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fatctl.clock import fixed
from fatctl.remote.runner import Pool
from fatctl.secrets import keyring_from
from fatctl.sensitive import Sensitive
from fatctl.services.common.targets import select_targets
from fatctl.services.storage.r2_rotation import rotate_r2, stored_expiry
from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.integration.engines.test_cloudflare import cf_settings

DAY = timedelta(days=1)
MASTER = Sensitive(base64.b64encode(b"k" * 32).decode())


FAR_PAST = datetime(2019, 3, 1, 8, 30, tzinfo=UTC)
FAR_FUTURE = datetime(2041, 6, 30, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize("now", [FAR_PAST, FAR_FUTURE], ids=["years-before", "years-after"])
def test_rotate_delivers_stores_and_skips_fresh(
    now: datetime,
    sshd_hosts: Any,
    fleet_db: Any,
    cloudflare_emulator: Any,
    tmp_path: Path,
) -> None:
    hosts = sshd_hosts(2)
    fleet = fleet_db(hosts)
    op = hosts[0].identity.operator
    settings = _settings(fleet, cloudflare_emulator, tmp_path)
    ring = keyring_from(MASTER)
    targets = select_targets(fleet.engine, settings, all_agents=True)
    kw: dict[str, Any] = {"env_path": f"/home/{op}/r2.env", "after": f"touch /home/{op}/restarted"}
    with Pool() as pool:
        first = rotate_r2(fleet.engine, ring, settings, targets, pool, clock=fixed(now), **kw)
        again = rotate_r2(fleet.engine, ring, settings, targets, pool, clock=fixed(now + DAY), **kw)
        later = rotate_r2(
            fleet.engine, ring, settings, targets[:1], pool, clock=fixed(now + 6 * DAY), **kw
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
    # Expiry is the run's instant plus the TTL: the second box from the first run, the first
    # box from the run six days later.
    assert stored_expiry(fleet.engine, hosts[0].name)[2] == now + 13 * DAY
    _, agent_id, expiry = stored_expiry(fleet.engine, hosts[1].name)
    assert expiry == now + 7 * DAY
    assert [r.expires_at for r in later] == [now + 13 * DAY]
    # Each box a run looks at is audited at the run's instant, not at the wall clock's: the
    # run that found both fresh too, so a run that changed nothing is still on the trail.
    with session_scope(fleet.engine) as session:
        trail = [e for e in repo.audit_trail(session) if e.action == "creds.rotate"]
        seen = sorted((_aware(e.at), e.result, e.actor, e.target) for e in trail)
        fresh = [json.loads(e.detail) for e in trail if e.result == "skipped"]
    assert seen == [
        (now, "ok", "fatctl", "box1"),
        (now, "ok", "fatctl", "box2"),
        (now + DAY, "skipped", "fatctl", "box1"),
        (now + DAY, "skipped", "fatctl", "box2"),
        (now + 6 * DAY, "ok", "fatctl", "box1"),
    ]
    assert [d["action"] for d in fresh] == ["fresh", "fresh"]
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


def test_failed_restart_is_audited_and_stores_nothing(
    sshd_hosts: Any, fleet_db: Any, cloudflare_emulator: Any, tmp_path: Path
) -> None:
    hosts = sshd_hosts(1)
    fleet = fleet_db(hosts)
    op = hosts[0].identity.operator
    settings = _settings(fleet, cloudflare_emulator, tmp_path)
    targets = select_targets(fleet.engine, settings, all_agents=True)
    with Pool() as pool:
        (done,) = rotate_r2(fleet.engine, keyring_from(MASTER), settings, targets, pool,
                            clock=fixed(FAR_FUTURE), env_path=f"/home/{op}/r2.env",
                            after="false", actor="ops@example")  # fmt: skip
    assert done.action == "failed" and "did not take" in done.detail
    # Not stored: the next run must try again rather than trust credentials rclone never read.
    assert stored_expiry(fleet.engine, hosts[0].name)[2] is None
    with session_scope(fleet.engine) as session:
        (event,) = [e for e in repo.audit_trail(session) if e.action == "creds.rotate"]
        assert (event.result, event.actor, _aware(event.at)) == (
            "failed",
            "ops@example",
            FAR_FUTURE,
        )
        assert "did not take" in event.detail


def _settings(fleet: Any, cloudflare_emulator: Any, tmp_path: Path) -> Any:
    return replace(
        cf_settings(cloudflare_emulator, tmp_path),
        database_url=fleet.settings.database_url,
        master_key=MASTER,
        operator_user=fleet.settings.operator_user,
        operator_key_file=fleet.settings.operator_key_file,
        ssh_port=fleet.settings.ssh_port,
    )


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)  # SQLite hands back naive UTC
