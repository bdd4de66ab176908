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
    for path in (home / user, ssh_dir):  # the user's own, as on a box: the rewrite runs as them
        shutil.chown(path, user, user)
    if existing is not None:
        (ssh_dir / "authorized_keys").write_text(existing)
        shutil.chown(ssh_dir / "authorized_keys", user, user)
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


def _rewrite_in(home: Path, user: str) -> subprocess.CompletedProcess[bytes]:
    wrapper = 'mount --bind "$1" /home && exec sh -c "$2"'
    command = ak.rewrite_authorized_keys(user)
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", wrapper, "sh", str(home),
         command],
        input=ak.managed_block(KEYS[:1]).encode(), capture_output=True,
    )  # fmt: skip


def test_links_planted_by_the_user_lead_nowhere(ssh_identity, tmp_path_factory):
    """The rewrite runs as the user: a link to a root-only file fails the push instead of
    copying the file into the user's authorized_keys, and a linked ~/.ssh is not chmod'ed."""
    home = tmp_path_factory.mktemp("home")
    home.chmod(0o755)
    user = ssh_identity.customer
    # Root's files where the user may look but not read, like /etc/ssh on a box; the rewrite
    # sees them under /home (the namespace's bind mount), so the links point there.
    (home / "etc").mkdir(mode=0o755)
    secret = home / "etc" / "host_key"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nroot's\n")
    secret.chmod(0o600)
    ssh_dir = home / user / ".ssh"
    ssh_dir.mkdir(parents=True)
    for path in (home / user, ssh_dir):
        shutil.chown(path, user, user)
    (ssh_dir / "authorized_keys").symlink_to("/home/etc/host_key")

    res = _rewrite_in(home, user)
    assert res.returncode != 0
    assert (ssh_dir / "authorized_keys").is_symlink()
    assert secret.read_text().endswith("root's\n") and secret.stat().st_mode & 0o777 == 0o600
    assert not [p for p in ssh_dir.iterdir() if p.is_file() and not p.is_symlink()]

    # ~/.ssh itself linked to a root-owned directory: its mode stays, nothing lands in it.
    system_dir = home / "etc"
    secret.unlink()
    (ssh_dir / "authorized_keys").unlink()
    ssh_dir.rmdir()
    ssh_dir.symlink_to("/home/etc")
    res = _rewrite_in(home, user)
    assert res.returncode != 0
    assert system_dir.stat().st_mode & 0o777 == 0o755 and not list(system_dir.iterdir())
