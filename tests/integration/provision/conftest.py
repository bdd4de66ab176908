"""A control plane wired to the sandbox's API emulators: migrated SQLite, key ring, settings
(Hetzner + Cloudflare + R2 temporary credentials), an operator key, and leak-check helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fatctl.config import Settings
from fatctl.domain import KeyRole
from fatctl.pacing.timing import Timing
from fatctl.sensitive import Sensitive
from tests.fixtures.sshd import keygen


@dataclass
class Plane:
    db: Any
    ring: Any
    settings: Settings
    hetzner: Any
    cloudflare: Any

    def infra(self) -> Any:
        from fatctl.infra.hcloud.engine import HcloudEngine

        return HcloudEngine(self.settings, timing=Timing.instant(), sleep=lambda s: None)

    def servers(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.hetzner.inventory()["servers"]}

    def primary_ips(self) -> list[dict[str, Any]]:
        return list(self.hetzner.inventory()["primary_ips"])

    def dns(self) -> list[tuple[str, str, str]]:
        return sorted((r["type"], r["name"], r["content"]) for r in self.cloudflare.records())


def plane_settings(tmp_path: Path, hetzner: Any, cloudflare: Any, r2: str = "") -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
        hcloud_token=Sensitive(hetzner.token),
        hcloud_endpoint=hetzner.url,
        cloudflare_api_token=Sensitive(cloudflare.token),
        cloudflare_base_url=cloudflare.url,
        cloudflare_account_id=cloudflare.account_id,
        domain="sandbox.test",
        engine="hcloud",
        r2_endpoint=r2,
        r2_parent_access_key_id="sandbox-parent-key",
        poll_interval="0",
        api_retries="6",
    )


def make_plane(tmp_path: Path, hetzner: Any, cloudflare: Any, r2: str = "") -> Plane:
    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.services.agents.keys import add_key
    from fatctl.state import migrate
    from fatctl.state.db import make_engine

    settings = plane_settings(tmp_path, hetzner, cloudflare, r2)
    migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    ring = keyring_from(Sensitive(generate_master_key()))
    op_pub = keygen(tmp_path / "operator", "operator@test")
    add_key(db, role=KeyRole.OPERATOR, public_key=op_pub, label="op", agent=None, actor="test")
    return Plane(db, ring, settings, hetzner, cloudflare)


@pytest.fixture
def plane(tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any) -> Any:
    p = make_plane(tmp_path, hetzner_emulator, cloudflare_emulator)
    yield p
    p.db.dispose()
