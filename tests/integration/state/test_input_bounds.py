"""Hostile bytes on stdin and in key files, through the real CLI on SQLite: bytes that are not
UTF-8, a 100 MB secret, `--file /dev/zero`, two keys in one file and a key that was revoked are
each one line on stderr and exit 2, read only as far as the bound, with nothing written."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from fatctl.secrets import generate_master_key
from tests.fixtures.cli import fatctl_command, fatctl_env, run_fatctl


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path), FATCTL_ACTOR="test",
                     FATCTL_MASTER_KEY=generate_master_key())  # fmt: skip
    run_fatctl("db", "upgrade", env=env, timeout=60, check=0)
    run_fatctl("agents", "create", "alice", "--owner", "alice@example.com", env=env, timeout=60,
               check=0)  # fmt: skip
    return env


@pytest.fixture
def keys(tmp_path: Path) -> list[str]:
    found = []
    for name in ("one", "two"):
        path = tmp_path / name
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-C", name, "-f", str(path)],
                       check=True)  # fmt: skip
        found.append((tmp_path / f"{name}.pub").read_text())
    return found


def _rows(tmp_path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(tmp_path / "fatctl.sqlite") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def _refused(env: dict[str, str], args: list[str], stdin: bytes, message: str) -> None:
    proc = subprocess.run(fatctl_command(*args), env=env, input=stdin, capture_output=True,
                          timeout=60, check=False)  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 2, (args, proc.returncode, err)
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert "Traceback" not in err


HUNDRED_MB = 100 * 1024 * 1024


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["secrets", "set", "x-key"], b"sk-\xff\xfe-not-utf8\n", "not UTF-8"),
        (["secrets", "set", "x-key"], b"s" * HUNDRED_MB, "larger than"),
        (["model", "key", "alice"], b"\xc3\x28", "not UTF-8"),
        (["keys", "add", "--agent", "alice", "--no-push", "--file", "-"], b"ssh-ed25519 \xff",
         "not UTF-8"),
        (["keys", "add", "--agent", "alice", "--no-push", "--file", "/dev/zero"], b"",
         "larger than"),
    ],
    ids=["secret-not-utf8", "secret-100mb", "model-key-not-utf8", "key-not-utf8", "dev-zero"],
)  # fmt: skip
def test_hostile_streams_refused(
    env: dict[str, str], tmp_path: Path, args: list[str], stdin: bytes, message: str
) -> None:
    before = _rows(tmp_path)
    _refused(env, args, stdin, message)
    assert _rows(tmp_path) == before


def test_two_keys_in_one_file_refused(env: dict[str, str], tmp_path: Path, keys: list[str]) -> None:
    both = tmp_path / "both.pub"
    both.write_text(keys[0] + keys[1].replace("\n", "\r\n"))
    before = _rows(tmp_path)
    _refused(env, ["keys", "add", "--agent", "alice", "--no-push", "--file", str(both)], b"",
             "several lines")  # fmt: skip
    assert _rows(tmp_path) == before


def test_revoked_key_is_not_readmitted(
    env: dict[str, str], tmp_path: Path, keys: list[str]
) -> None:
    add = ["keys", "add", "--agent", "alice", "--no-push", "--file", "-"]
    run_fatctl(*add, env=env, timeout=60, input=keys[0], check=0)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", "-"], input=keys[0], text=True,
                                 capture_output=True, check=True).stdout.split()[1]  # fmt: skip
    run_fatctl("keys", "revoke", fingerprint, "--agent", "alice", "--no-push", env=env,
               timeout=60, check=0)  # fmt: skip
    before = _rows(tmp_path)
    _refused(env, add, keys[0].encode(), "was revoked")
    assert _rows(tmp_path) == before
    # A control character in an operator-given label is refused the same way.
    _refused(env, [*add[:-2], "--label", "x\x1b[2Jy", "--file", "-"], keys[1].encode(),
             "control characters")  # fmt: skip
