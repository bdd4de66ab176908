"""`fatctl tokens create|list|revoke` as an operator runs them: the token is printed once and
stored only as its SHA-256; bad input is one line and exit 2, with nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.fixtures.cli import fatctl_env, run_fatctl


def fatctl(env: dict[str, str], *args: str, code: int = 0) -> str:
    return run_fatctl(*args, env=env, timeout=120, check=code).stdout


def test_create_shows_the_token_once_and_stores_its_hash_only(tmp_path: Path) -> None:
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path))
    fatctl(env, "db", "upgrade")
    scopes = ("--scope", "agents:write", "--scope", "agents:read")
    made = json.loads(fatctl(env, "tokens", "create", "signup", *scopes, "--expires-in", "90d",
                             "--json"))  # fmt: skip
    token = made["token"]
    assert token.startswith("fat_") and len(token) > 40
    assert made["scopes"] == "agents:read agents:write" and made["expires_at"]

    listed = fatctl(env, "tokens", "list", "--json")
    assert token not in listed and json.loads(listed)[0]["name"] == "signup"
    database = b"".join(p.read_bytes() for p in tmp_path.glob("fatctl.sqlite*"))
    assert token.encode() not in database
    assert hashlib.sha256(token.encode()).hexdigest().encode() in database

    revoked = json.loads(fatctl(env, "tokens", "revoke", "signup", "--json"))
    assert revoked["revoked_at"]
    audit = fatctl(env, "audit", "--json")
    assert "tokens.create" in audit and "tokens.revoke" in audit and token not in audit


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path))
    fatctl(env, "db", "upgrade")
    bad = [
        ("tokens", "create", "ok-name", "--scope", "agents:everything"),
        ("tokens", "create", "ok-name", "--scope", "agents:read", "--expires-in", "soon"),
        ("tokens", "create", "Bad Name!", "--scope", "agents:read"),
        ("tokens", "create", "ok-name"),  # no scope
    ]
    for args in bad:
        proc = run_fatctl(*args, env=env, timeout=120, check=2)
        assert proc.stderr.count("\n") == 1 and "fatctl: error:" in proc.stderr, proc.stderr
        assert proc.stdout == ""
    assert json.loads(fatctl(env, "tokens", "list", "--json")) == []
    fatctl(env, "tokens", "create", "dup", "--scope", "fleet:admin")
    again = run_fatctl("tokens", "create", "dup", "--scope", "fleet:admin", env=env, timeout=120,
                       check=2)  # fmt: skip
    assert "exists" in again.stderr and again.stdout == ""
