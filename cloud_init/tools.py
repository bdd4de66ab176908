"""Running the external validators: finding them, and turning their output into problem lines.

Each validator is a real program (cloud-init, shellcheck, systemd-analyze, caddy); a missing
one is a `ToolMissing` with the Debian package to install, never a silently skipped check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fatctl.errors import ToolMissing

# program -> Debian package that provides it
PACKAGES = {
    "cloud-init": "cloud-init",
    "shellcheck": "shellcheck",
    "systemd-analyze": "systemd",
    "caddy": "caddy",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    "unshare": "util-linux",
    "nft": "nftables",
}


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    output: str  # stdout and stderr together, in that order


def require(program: str) -> str:
    """The absolute path of `program`, or ToolMissing naming the package to install."""
    path = shutil.which(program)
    if path is None:
        package = PACKAGES.get(program, program)
        raise ToolMissing(
            f"{program} not found: needed to validate rendered box files",
            hint=f"apt-get install {package}",
        )
    return path


def run_tool(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> ToolResult:
    """Run a validator with captured output; the program is resolved (or ToolMissing) first."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [require(argv[0]), *argv[1:]],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return ToolResult(proc.returncode, proc.stdout + proc.stderr)


def lines(text: str, *, prefix: str = "", limit: int = 20) -> list[str]:
    """Non-empty output lines as problems, each with `prefix`, at most `limit` of them."""
    found = [f"{prefix}{line.strip()}" for line in text.splitlines() if line.strip()]
    if len(found) > limit:
        found = [*found[:limit], f"{prefix}... {len(found) - limit} more"]
    return found
