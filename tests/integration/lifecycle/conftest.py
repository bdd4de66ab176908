"""The lifecycle tests' control plane: the provision tests' plane (migrated SQLite, key ring,
settings for the Hetzner and Cloudflare emulators, an operator key), with R2 on the sandbox's
S3 server where a test needs the agent's data prefix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.provision.conftest import Plane, make_plane


@pytest.fixture
def plane(tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any) -> Iterator[Plane]:
    p = make_plane(tmp_path, hetzner_emulator, cloudflare_emulator)
    yield p
    p.db.dispose()
