"""`image build` against the sandbox's Hetzner emulator without boxes (no root needed).

The emulator is the real API side: server creation with user-data, actions, shutdown,
create_image with labels, delete, image listing with label selectors. What runs *on* the
builder is answered by a recording shell, since without boxes there is no machine behind the
server (tests/integration/image/test_image_build_box.py drives a real one over SSH). The
shell checks that the builder exists and runs when it is used, so the order is proven.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud_init import layout as L
from cloud_init.packages import BOX_PACKAGES
from cloud_init.render import render_install_script
from cloud_init.validate import validate_user_data
from fatctl.errors import FatctlError
from fatctl.infra.hcloud.images import GoldenImages
from fatctl.pacing.poll import Backoff
from fatctl.pacing.timing import Timing
from fatctl.remote.runner import Result
from fatctl.remote.target import Target
from fatctl.services.image.build import BuildOptions, ImageBuildFailed, build_golden, record_build
from fatctl.services.image.recipe import PACKAGES_SCRIPT, GoldenRecipe
from tests.integration.engines.conftest import OP_KEY, emulator_settings

RECIPE = GoldenRecipe("2026.9.6", "24.21.0")


@dataclass
class Builders:
    """Plays the builder machine: answers commands, and snapshots the server while it does."""

    emulator: Any
    fail_on: str = ""
    commands: list[str] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    closed: int = 0

    def connect(self, target: Target) -> Builders:
        self.targets.append(target)
        return self

    def run(self, command: str, *, timeout: float | None = None) -> Result:
        servers = self.emulator._emulator.state.store.all("server")
        self.seen.append({s["name"]: (s["status"], s.get("user_data")) for s in servers})
        self.commands.append(command)
        if self.fail_on and self.fail_on in command:
            return Result("b", "h", 1, "", "openclaw: not found\n", 0.1)
        out = "2026.9.6\n" if "readlink" in command else "status: done\n"
        return Result("b", "h", 0, out, "", 0.1)

    def close(self) -> None:
        self.closed += 1


def _cloud(emulator: Any, tmp_path: Path) -> GoldenImages:
    return GoldenImages(emulator_settings(emulator, tmp_path), timing=Timing.instant())


def _opts() -> BuildOptions:
    return BuildOptions(operator_key=OP_KEY, key_file="/nonexistent", backoff=Backoff.instant(),
                        stamp="t1")  # fmt: skip


def _actions(emulator: Any) -> list[str]:
    return [a["command"] for a in sorted(emulator._emulator.store.all("action"),
                                         key=lambda a: a["id"])]  # fmt: skip


def test_build_runs_the_whole_sequence(hetzner_emulator: Any, tmp_path: Path) -> None:
    events: list[tuple[str, dict[str, object]]] = []
    shell = Builders(hetzner_emulator)
    result = build_golden(_cloud(hetzner_emulator, tmp_path), shell.connect, RECIPE, _opts(),
                          lambda kind, **f: events.append((kind, f)))  # fmt: skip

    # SSH as root to the builder's IPv4, pinned to the host key its user-data installs.
    (target,) = shell.targets
    assert target.user == "root" and target.host.startswith("10.77.")
    name = result.builder
    status, user_data = shell.seen[0][name]
    assert status == "running"
    assert validate_user_data(user_data) == []
    assert target.host_keys[0] in user_data
    # The install steps are the shared ones: the rendered script and the box package list.
    doc = yaml.safe_load(user_data)
    files = {f["path"]: f["content"] for f in doc["write_files"]}
    assert files[L.INSTALL_SCRIPT] == render_install_script("2026.9.6", "24.21.0")
    assert all(p in files[PACKAGES_SCRIPT] for p in BOX_PACKAGES)
    assert doc["runcmd"] == [[PACKAGES_SCRIPT], [L.INSTALL_SCRIPT]]
    assert files["/root/.ssh/authorized_keys"].strip() == OP_KEY

    # Over SSH: wait for cloud-init, check the runtime, clean up; in that order, then closed.
    assert shell.commands[0].startswith("cloud-init status --wait")
    assert "readlink /opt/openclaw/current" in shell.commands[1]
    cleanup = shell.commands[2]
    for step in ("rm -f /etc/ssh/ssh_host_*", "cloud-init clean --logs --seed",
                 "truncate -s 0 /etc/machine-id", "rm -f /root/.ssh/authorized_keys"):  # fmt: skip
        assert step in cleanup
    assert shell.closed == 1 and result.reported_version == "2026.9.6"

    # Then at Hetzner: shut down, snapshot, delete; the snapshot is labelled and available.
    assert _actions(hetzner_emulator) == [
        "create_server", "start_server", "shutdown_server", "create_image", "delete_server",
    ]  # fmt: skip
    inventory = hetzner_emulator.inventory()
    assert inventory["servers"] == []
    (image,) = inventory["images"]
    assert str(image["id"]) == result.image_id and image["type"] == "snapshot"
    assert image["labels"] == {"managed-by": "fatctl", "role": "golden", "runtime": "2026.9.6",
                               "node": "24.21.0", "base": "debian-12"}  # fmt: skip
    assert image["created_from"]["name"] == name
    assert [e[0] for e in events] == ["builder", "installed", "cleaned", "snapshot",
                                      "builder.deleted"]  # fmt: skip


def test_failed_install_deletes_the_builder_and_snapshots_nothing(
    hetzner_emulator: Any, tmp_path: Path
) -> None:
    shell = Builders(hetzner_emulator, fail_on="readlink")
    with pytest.raises(ImageBuildFailed, match=r"runtime check failed .*openclaw: not found"):
        build_golden(_cloud(hetzner_emulator, tmp_path), shell.connect, RECIPE, _opts(),
                     lambda kind, **f: None)  # fmt: skip
    inventory = hetzner_emulator.inventory()
    assert inventory["servers"] == [] and inventory["images"] == []
    assert "cloud-init clean" not in "".join(shell.commands)  # stopped at the failed step
    assert shell.closed == 1


def test_unreachable_builder_is_deleted_too(hetzner_emulator: Any, tmp_path: Path) -> None:
    from fatctl.errors import RemoteError

    def refuse(target: Target) -> Builders:
        raise RemoteError(f"{target.host} port 22: connection refused")

    with pytest.raises(ImageBuildFailed, match=r"SSH on .*connection refused"):
        build_golden(_cloud(hetzner_emulator, tmp_path), refuse, RECIPE, _opts(),
                     lambda kind, **f: None)  # fmt: skip
    assert hetzner_emulator.inventory()["servers"] == []


def test_builds_are_recorded_with_their_outcome(
    hetzner_emulator: Any, tmp_path: Path, migrated_engine: Any
) -> None:
    from sqlmodel import col, select

    from fatctl.state.db import session_scope
    from fatctl.state.models import AuditEvent, GoldenImage

    cloud = _cloud(hetzner_emulator, tmp_path)
    ok = record_build(
        migrated_engine,
        "op@test",
        RECIPE,
        "b-ok",
        lambda: build_golden(
            cloud, Builders(hetzner_emulator).connect, RECIPE, _opts(), lambda kind, **f: None
        ),
    )
    with pytest.raises(FatctlError):
        record_build(migrated_engine, "op@test", RECIPE, "b-bad", lambda: build_golden(
            cloud, Builders(hetzner_emulator, fail_on="cloud-init status").connect, RECIPE,
            _opts(), lambda kind, **f: None))  # fmt: skip
    with session_scope(migrated_engine) as session:
        rows = session.exec(select(GoldenImage).order_by(col(GoldenImage.id))).all()
        assert [(r.state, r.image_id, r.builder) for r in rows] == [
            ("available", ok.image_id, "b-ok"), ("failed", "", "b-bad")]  # fmt: skip
        assert "cloud-init failed" in rows[1].error and rows[1].finished_at is not None
        audits = session.exec(select(AuditEvent).where(AuditEvent.action == "image.build"))
        assert sorted(a.result for a in audits) == ["failed", "ok"]


def test_builder_made_by_a_lost_create_is_deleted(hetzner_emulator: Any, tmp_path: Path) -> None:
    # The first create does its work, but its answer never arrives; the retry hits the name.
    hetzner_emulator.set_faults(hold_match=r"^POST /v1/servers$", hold_nth=1, hold_seconds=0.2)
    shell = Builders(hetzner_emulator)
    with pytest.raises(FatctlError, match="create image builder"):
        build_golden(_cloud(hetzner_emulator, tmp_path), shell.connect, RECIPE, _opts(),
                     lambda kind, **f: None)  # fmt: skip
    hetzner_emulator.clear_faults()
    assert hetzner_emulator.inventory()["servers"] == []
    assert shell.commands == []  # nothing ran: there was no builder to trust
