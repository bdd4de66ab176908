"""A control plane on the API emulators with a small provisioned fleet (box steps skipped: the
infra is what `preview`/`apply` look at), and `fatctl` as a real process against it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.provision.conftest import Plane, make_plane

FLEET = ("alpha", "beta", "gamma")


def provision_fleet(plane: Plane, names: tuple[str, ...] = FLEET) -> None:
    from fatctl.pacing.poll import Backoff
    from fatctl.services.agents.records import NewAgent
    from fatctl.services.common.steps import BOX_STEPS
    from fatctl.services.provision.flow import Options, provision

    for name in names:
        request = NewAgent(name, f"{name}@example.com", "managed", "cx23", "fsn1", "debian-12",
                           "2026.9.6")  # fmt: skip
        options = Options(skip=BOX_STEPS, backoff=Backoff.instant(), validate=False)
        provision(plane.db, plane.ring, plane.settings, plane.infra(), request, "test", options)


@pytest.fixture
def fleet_plane(tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any) -> Iterator[Plane]:
    plane = make_plane(tmp_path, hetzner_emulator, cloudflare_emulator)
    provision_fleet(plane)
    yield plane
    plane.db.dispose()


def cli_env(plane: Plane, tmp_path: Path) -> dict[str, str]:
    """What CI would export: no TTY, CI=true, settings from the environment only."""
    return fatctl_env(
        drop=("NO_COLOR",),  # plain tables must come from CI and the pipe, not from the shell
        FATCTL_DATA_DIR=str(tmp_path / "cli-data"),
        FATCTL_DATABASE_URL=plane.settings.database_url,
        FATCTL_DOMAIN=plane.settings.domain,
        FATCTL_ENGINE="hcloud",
        FATCTL_POLL_INTERVAL="0.01",
        FATCTL_API_RETRIES="2",
        FATCTL_ACTOR="ci@pipeline",
        HCLOUD_TOKEN=plane.hetzner.token,
        HCLOUD_ENDPOINT=plane.hetzner.url,
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
    )


def fatctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_fatctl(*args, env=env, timeout=180)
