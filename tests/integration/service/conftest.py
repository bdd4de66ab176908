"""`fatctl serve` in this process against the API emulators: a migrated database (SQLite file
or PostgreSQL), tokens of every scope, and the app under FastAPI's TestClient, whose lifespan
launches DBOS on that database and destroys it at the end (no DBOS instance or thread is left
for the next test). Provisioning is API-only (`skip_box`): it stops after DNS and infra.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fatctl.pacing.poll import Backoff
from fatctl.pacing.timing import Timing
from tests.integration.provision.conftest import Plane, plane_settings

SCOPES = {"reader": ["agents:read"], "writer": ["agents:write", "agents:read"],
          "admin": ["fleet:admin"]}  # fmt: skip


@dataclass
class Service:
    plane: Plane
    runtime: Any
    client: Any
    tokens: dict[str, str]

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def wait(self, workflow_id: str) -> Any:
        """The workflow's result, once it has one (blocks; DBOS polls its own table)."""
        from dbos import DBOS

        return DBOS.retrieve_workflow(workflow_id).get_result()


def runtime_for(plane: Plane, executor_id: str = "test-executor") -> Any:
    from fatctl.infra.hcloud.engine import HcloudEngine
    from fatctl.service.context import Runtime

    def infra() -> Any:
        return HcloudEngine(plane.settings, timing=Timing.instant(), sleep=lambda s: None)

    return Runtime(plane.db, plane.ring, plane.settings, infra, skip_box=True,
                   backoff=Backoff.instant(), executor_id=executor_id,
                   queue_poll_s=0.05)  # fmt: skip


def service_plane(
    tmp_path: Path, hetzner: Any, cloudflare: Any, db_url: str, master_key: str = ""
) -> Plane:
    """The provision tests' plane (`make_plane`), on `db_url`: SQLite or PostgreSQL."""
    import dataclasses

    from fatctl.domain import KeyRole
    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.sensitive import Sensitive
    from fatctl.services.agents.keys import add_key
    from fatctl.state import migrate
    from fatctl.state.db import make_engine
    from tests.fixtures.sshd import keygen

    settings = dataclasses.replace(
        plane_settings(tmp_path, hetzner, cloudflare), database_url=db_url
    )
    migrate.upgrade(db_url)
    db = make_engine(db_url)
    ring = keyring_from(Sensitive(master_key or generate_master_key()))
    op_pub = keygen(tmp_path / "operator", "operator@test")
    add_key(db, role=KeyRole.OPERATOR, public_key=op_pub, label="op", agent=None, actor="test")
    return Plane(db, ring, settings, hetzner, cloudflare)


def make_tokens(db: Any) -> dict[str, str]:
    from fatctl.service.tokens import create_token

    return {who: create_token(db, who, scopes, None, "test")[0] for who, scopes in SCOPES.items()}


@pytest.fixture
def service(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, db_url: str
) -> Iterator[Service]:
    import dbos._dbos as dbos_module
    from fastapi.testclient import TestClient

    from fatctl.service import context
    from fatctl.service.api.app import create_app

    plane = service_plane(tmp_path, hetzner_emulator, cloudflare_emulator, db_url)
    runtime = runtime_for(plane)
    tokens = make_tokens(plane.db)
    before = set(threading.enumerate())
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            yield Service(plane, runtime, client, tokens)
        # The lifespan destroyed DBOS: no instance, no runtime, and its threads end.
        assert dbos_module._dbos_global_instance is None and context._current == []
        # Not DBOS's: AnyIO's idle workers (the TestClient's loop; they leave on anyio's idle
        # timeout) and the Hetzner emulator's action pool (started by the first action).
        leftover = [t for t in threading.enumerate() if t not in before
                    and not t.name.startswith(("AnyIO worker thread", "hc-action"))]  # fmt: skip
        for thread in leftover:
            thread.join(timeout=10)  # idle pool workers exit once they see the shutdown
        assert [t.name for t in leftover if t.is_alive()] == []
    finally:
        plane.db.dispose()
