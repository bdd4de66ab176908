"""The README's two commands start as root on a machine without sudo (a minimal Debian has
none), and tell a non-root user how to run them. Each script's `--preflight` runs exactly the
checks it makes before changing anything; here under a PATH that has every tool of this
machine except `sudo`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("scripts/demo.sh", "scripts/test.sh")


def _path_without_sudo(tmp_path: Path) -> str:
    """A directory of links to every command on PATH but sudo."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for entry in reversed(os.environ["PATH"].split(os.pathsep)):
        directory = Path(entry)
        if not directory.is_dir():
            continue
        for tool in directory.iterdir():
            if tool.name != "sudo" and os.access(tool, os.X_OK) and tool.is_file():
                link = bin_dir / tool.name
                link.unlink(missing_ok=True)
                link.symlink_to(tool.resolve())
    return str(bin_dir)


@pytest.mark.root
@pytest.mark.parametrize("script", SCRIPTS)
def test_preflight_as_root_without_sudo(script: str, tmp_path: Path) -> None:
    path = _path_without_sudo(tmp_path)
    env = {**os.environ, "PATH": path}
    assert subprocess.run(["sh", "-c", "command -v sudo"], env=env).returncode != 0
    proc = subprocess.run(["bash", script, "--preflight"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"{script}: preflight ok" in proc.stdout


@pytest.mark.root
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_user_is_told_to_use_sudo(script: str) -> None:
    proc = subprocess.run(["runuser", "-u", "nobody", "--", "bash", script, "--preflight"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"{script}: run as root (it installs packages and boots nspawn boxes): "
        f"as a user with sudo, sudo bash {script}"
    )


def test_no_script_calls_sudo() -> None:
    """The scripts run as root: a `sudo` in them would fail on a machine without it."""
    for script in (*SCRIPTS, "scripts/machine.sh", ".ci/run"):
        for number, line in enumerate((ROOT / script).read_text().splitlines(), 1):
            code = re.sub(r"\"[^\"]*\"|'[^']*'", "", line).split("#", 1)[0]  # words, not text
            assert not re.search(r"(^|[;&|(\s])sudo\s", code), f"{script}:{number}: {line}"
