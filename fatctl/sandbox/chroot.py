"""Building a Debian root filesystem on the host: debootstrap, apt and scripts in a chroot.

Every step runs inside its own private mount namespace (`unshare --mount`): the /proc, /sys and
/dev mounts a chroot needs vanish with the process, so a killed build never leaves mounts on the
host. Command builders are pure; `run_logged` is the only I/O.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from fatctl.errors import FatctlError

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")

# Mount what apt maintainer scripts and npm expect, then enter the chroot. "$1" is the root.
_ENTER = (
    'set -e; r="$1"; shift; '
    'mount -t proc proc "$r/proc"; mount -t sysfs sys "$r/sys"; '
    'mount --rbind /dev "$r/dev"; exec chroot "$r" "$@"'
)
_CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BuildError(FatctlError):
    """A step of the golden-image build failed; the message names the step and its log."""


def host_mirrors(sources: Path = HOST_SOURCES) -> tuple[str, str]:
    """The Debian and Debian-security mirrors this machine's apt already uses (deb822 file).

    Falls back to deb.debian.org when the file is absent or names no Debian mirror.
    """
    if not sources.exists():
        return DEFAULT_MIRROR, DEFAULT_SECURITY
    main, security = DEFAULT_MIRROR, DEFAULT_SECURITY
    for uri in re.findall(r"^URIs:\s*(\S+)", sources.read_text(), flags=re.MULTILINE):
        if uri.rstrip("/").endswith("debian-security"):
            security = uri.rstrip("/")
        elif uri.rstrip("/").endswith("/debian"):
            main = uri.rstrip("/")
    return main, security


def sources_file(suite: str, mirror: str, security: str) -> str:
    """The box's deb822 apt sources: the suite, its updates and its security suite."""
    return (
        f"Types: deb\nURIs: {mirror}\nSuites: {suite} {suite}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {suite}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def private_mounts(argv: Sequence[str]) -> list[str]:
    """`argv` in a fresh mount namespace whose mounts die with it."""
    return ["unshare", "--mount", "--propagation", "private", "--", *argv]


def debootstrap_cmd(root: Path, suite: str, mirror: str, include: Sequence[str]) -> list[str]:
    """A minbase debootstrap; `include` are the packages the chroot steps need first."""
    return private_mounts(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(include)}",
            suite,
            str(root),
            mirror,
        ]
    )


def chroot_cmd(root: Path, argv: Sequence[str]) -> list[str]:
    """`argv` run inside `root` with /proc, /sys and /dev mounted privately."""
    return private_mounts(["sh", "-c", _ENTER, "fat-chroot", str(root), *argv])


def apt_install_cmd(root: Path, packages: Sequence[str]) -> list[str]:
    """apt-get update + install without recommends (the box gets exactly the listed set)."""
    quoted = " ".join(packages)
    script = (
        "set -e; apt-get update -q; "
        "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "
        f"{quoted}; apt-get clean"
    )
    return chroot_cmd(root, ["/bin/sh", "-c", script])


def chroot_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for chroot commands: nothing of the host's leaks in."""
    env = {
        "PATH": _CHROOT_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
    }
    env.update(extra or {})
    return env


def run_logged(step: str, argv: Sequence[str], log: Path, env: Mapping[str, str]) -> None:
    """Run one build step, appending its output to `log`; BuildError naming the step if it fails."""
    with log.open("ab") as out:
        out.write(f"\n==> {step}: {' '.join(argv)}\n".encode())
        out.flush()
        result = subprocess.run(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=dict(env), check=False
        )
    if result.returncode != 0:
        raise BuildError(f"image build step '{step}' failed (exit {result.returncode}); see {log}")
