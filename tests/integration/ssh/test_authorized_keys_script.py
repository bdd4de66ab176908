"""The remote authorized_keys rewrite, run by a real `sh`/`awk`, agrees with the Python reference.

Runs the exact command fatctl sends, as root inside a private mount namespace whose /home is a
temp dir (so getent's home for the throwaway user resolves there), over generated files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fatctl.remote.commands import authorized_keys as ak

KEYS = [f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{c * 43} k{i}" for i, c in enumerate("ABCDE")]
HAND = [
    "# my own keys",
    'from="10.0.0.0/8" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI' + "Z" * 43,
    "",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7hand me@home",
]
LINES = st.sampled_from([*KEYS, *HAND, ak.BEGIN, ak.END])


def run_rewrite(home: Path, user: str, existing: str | None, keys, drop) -> str:
    ssh_dir = home / user / ".ssh"
    shutil.rmtree(home / user, ignore_errors=True)
    ssh_dir.mkdir(parents=True)
    if existing is not None:
        (ssh_dir / "authorized_keys").write_text(existing)
    command = ak.rewrite_authorized_keys(user, drop)
    wrapper = 'mount --bind "$1" /home && exec sh -c "$2"'
    res = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            wrapper,
            "sh",
            str(home),
            command,
        ],
        input=ak.managed_block(keys).encode(),
        capture_output=True,
    )
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in ssh_dir.iterdir()) == ["authorized_keys"]  # no temp files
    assert (ssh_dir / "authorized_keys").stat().st_mode & 0o777 == 0o600
    assert (ssh_dir / "authorized_keys").owner() == user
    return (ssh_dir / "authorized_keys").read_text()


def test_shell_rewrite_matches_reference(ssh_identity, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    home.chmod(0o755)
    user = ssh_identity.customer

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        lines=st.lists(LINES, max_size=8),
        keys=st.lists(st.sampled_from(KEYS), max_size=3),
        drop=st.lists(st.sampled_from(KEYS), max_size=2),
        exists=st.booleans(),
    )
    def check(lines, keys, drop, exists):
        existing = "".join(f"{line}\n" for line in lines) if exists else None
        got = run_rewrite(home, user, existing, keys, drop)
        assert got == ak.merge_managed_block(existing or "", keys, drop)

    check()


def test_missing_user_fails_cleanly(ssh_identity, tmp_path):
    res = subprocess.run(
        ["sh", "-c", ak.rewrite_authorized_keys("nosuchuserxyz")], input=b"", capture_output=True
    )
    assert res.returncode == 3 and res.stderr == b"no such user: nosuchuserxyz\n"
