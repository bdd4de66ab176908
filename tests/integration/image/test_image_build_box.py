"""`image build` against the sandbox with a real machine behind the builder (root only).

The Hetzner emulator boots an nspawn box for the builder server with the builder's user-data;
fatctl reaches it over real SSH (root, operator key, pinned host key), waits for cloud-init's
`runcmd` (the shared install steps: packages present, runtime switched), checks the runtime,
runs the cleanup, then shuts it down, snapshots and deletes it through the API. A proxy shell
inspects the real machine after the cleanup, before fatctl lets go of it.

The sandbox's box boots the sandbox golden image (no network: nothing can be downloaded), so
the install steps find everything present; and its NoCloud seed is a read-only bind mount, so
the cleanup keeps `/var/lib/cloud/seed` there (`clean_seed=False`; on Hetzner it is removed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fatctl.infra.hcloud.images import GoldenImages
from fatctl.pacing.poll import Backoff
from fatctl.pacing.timing import Timing
from fatctl.remote.runner import Connection, Result, connect
from fatctl.remote.target import Target
from fatctl.sandbox.nspawn_driver import NspawnBoxDriver
from fatctl.services.agents.material import generate_host_key
from fatctl.services.image.build import BuildOptions, build_golden
from fatctl.services.image.recipe import GoldenRecipe
from tests.fixtures.boxes import require_boxes
from tests.fixtures.cli import fatctl_env, run_fatctl
from tests.integration.engines.conftest import emulator_settings

AFTER_CLEANUP = (
    "ls /etc/ssh/ | grep -c ssh_host_ || true; wc -c < /etc/machine-id; "
    "test -e /root/.ssh/authorized_keys && echo keys-left || echo keys-gone; "
    "test -e /var/lib/cloud/instance && echo state-left || echo state-gone; "
    "readlink /opt/openclaw/current"
)


@pytest.fixture
def boxed_emulator(box_driver: NspawnBoxDriver, tmp_path: Path) -> Iterator[Any]:
    from fatctl.sandbox.hetzner import start_emulator

    require_boxes()
    handle = start_emulator(tmp_path / "hetzner", driver=box_driver, action_delay=0.0)
    try:
        yield handle
    finally:
        handle.stop()


@dataclass
class Inspecting:
    """A real SSH connection that, when fatctl closes it, first looks at the machine."""

    conn: Connection
    commands: list[str] = field(default_factory=list)
    after: str = ""

    def run(self, command: str, *, timeout: float | None = None) -> Result:
        self.commands.append(command)
        return self.conn.run(command, timeout=timeout)

    def close(self) -> None:
        self.after = self.conn.run(AFTER_CLEANUP, timeout=30).stdout
        self.conn.close()


def test_image_build_on_a_real_builder(boxed_emulator: Any, tmp_path: Path, figure: Any) -> None:
    key = generate_host_key("operator@test")  # an ed25519 pair serves as the login key too
    key_file = tmp_path / "operator_ed25519"
    key_file.write_text(key.private.reveal())
    key_file.chmod(0o600)
    shells: list[Inspecting] = []

    def connect_inspecting(target: Target) -> Inspecting:
        shells.append(Inspecting(connect(target)))
        return shells[-1]

    opts = BuildOptions(operator_key=key.pair.public_key, key_file=str(key_file),
                        backoff=Backoff(interval=1.0, cap=2.0, timeout=240.0),
                        install_timeout=300.0, clean_seed=False, stamp="box")  # fmt: skip
    cloud = GoldenImages(emulator_settings(boxed_emulator, tmp_path), timing=Timing.instant())
    recipe = GoldenRecipe("2026.9.6", "24.21.0")
    result = build_golden(cloud, connect_inspecting, recipe, opts, lambda kind, **f: None)
    figure("image build on a sandbox box", result.elapsed_s, " s")

    (shell,) = shells
    assert shell.commands[0].startswith("cloud-init status --wait")
    assert "2026.9.6" in result.reported_version
    host_keys, machine_id, keys, state, current = shell.after.split()
    assert (host_keys, machine_id) == ("0", "0")
    assert (keys, state, current) == ("keys-gone", "state-gone", "2026.9.6")

    inventory = boxed_emulator.inventory()
    assert inventory["servers"] == []
    assert [i["id"] for i in inventory["images"]] == [int(result.image_id)]


def test_image_build_cli_on_a_real_builder(
    boxed_emulator: Any, tmp_path: Path, sqlite_url: str, figure: Any
) -> None:
    """`fatctl image build` as operators (and CI) run it: a process, no TTY, JSON events."""
    from sqlmodel import select

    from fatctl.state.db import make_engine, session_scope
    from fatctl.state.migrate import upgrade
    from fatctl.state.models import GoldenImage

    upgrade(sqlite_url)
    key_file = tmp_path / "operator_ed25519"
    key_file.write_text(generate_host_key("operator@test").private.reveal())
    key_file.chmod(0o600)
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path / "data"), FATCTL_DATABASE_URL=sqlite_url,
                     HCLOUD_TOKEN=boxed_emulator.token, HCLOUD_ENDPOINT=boxed_emulator.url,
                     FATCTL_OPERATOR_KEY_FILE=str(key_file), FATCTL_POLL_INTERVAL="0.2",
                     FATCTL_SANDBOX="1", XDG_CONFIG_HOME=str(tmp_path / "cfg"))  # fmt: skip
    proc = run_fatctl("image", "build", "--version", "2026.9.5", "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    events = [doc.get("event") for doc in lines[:-1]]
    assert events == ["builder", "installed", "cleaned", "snapshot", "builder.deleted"]
    assert all("ts" in doc for doc in lines[:-1])
    result = lines[-1]
    assert "2026.9.5" in result["reported"] and "runtime=2026.9.5" in result["labels"]
    figure("fatctl image build (CLI) on a sandbox box", result["elapsed_s"], " s")
    db = make_engine(sqlite_url)
    with session_scope(db) as session:
        (row,) = session.exec(select(GoldenImage)).all()
        assert (row.state, row.image_id) == ("available", result["image_id"])
    db.dispose()
    assert boxed_emulator.inventory()["servers"] == []
