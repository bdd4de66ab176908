"""What fatctl creates on the operator's machine is owner-only whatever the umask: the data dir
0700, the SQLite database and its -wal/-shm companions 0600 (issue 16). A directory the
operator made is left as it is."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fatctl.private_paths import private_dir, private_file
from tests.fixtures.cli import fatctl_env, run_fatctl


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o000])
def loose_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_a_new_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    from sqlalchemy import text

    from fatctl.state.db import make_engine

    tmp_path.chmod(0o755)  # the operator's own dir, which fatctl must leave as it is
    db = tmp_path / "made" / "by" / "fatctl" / "fatctl.sqlite"
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:  # WAL mode: the -wal/-shm files exist while it is open
            conn.execute(text("CREATE TABLE t (secret TEXT)"))
            conn.execute(text("INSERT INTO t VALUES ('x')"))
            conn.commit()
            companions = [db.with_name(db.name + s) for s in ("-wal", "-shm")]
            assert all(c.exists() for c in companions)
            assert {c.name: mode(c) for c in companions} == {c.name: 0o600 for c in companions}
    finally:
        engine.dispose()
    assert mode(db) == 0o600
    for made in (db.parent, db.parent.parent, db.parent.parent.parent):
        assert mode(made) == 0o700, made
    assert mode(tmp_path) == 0o755


def test_an_existing_loose_database_is_tightened_its_dir_is_not(tmp_path: Path) -> None:
    from fatctl.state.db import make_engine

    tmp_path.chmod(0o750)
    db = tmp_path / "fatctl.sqlite"
    db.touch(mode=0o644)
    db.chmod(0o644)
    wal = tmp_path / "fatctl.sqlite-wal"
    wal.touch()
    wal.chmod(0o664)
    make_engine(f"sqlite:///{db}").dispose()
    assert (mode(db), mode(wal), mode(tmp_path)) == (0o600, 0o600, 0o750)


def test_private_dir_and_file_set_exact_modes_under_any_umask(tmp_path: Path) -> None:
    old = os.umask(0o777)  # the umask can only remove bits: a chmod must give them back
    try:
        private_dir(tmp_path / "a" / "b")
        private_file(tmp_path / "a" / "b" / "key")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a" / "b" / "key") == 0o600
    (tmp_path / "a" / "b" / "key").write_text("kept")
    private_file(tmp_path / "a" / "b" / "key")  # an existing file is never truncated
    assert (tmp_path / "a" / "b" / "key").read_text() == "kept"


def test_db_upgrade_makes_a_private_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "xdg" / "fatctl"
    env = fatctl_env(XDG_DATA_HOME=str(tmp_path / "xdg"), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    old = os.umask(0o022)
    try:
        run_fatctl("db", "upgrade", env=env, timeout=120, check=0)
    finally:
        os.umask(old)
    assert (mode(tmp_path / "xdg"), mode(data)) == (0o700, 0o700)
    assert mode(data / "fatctl.sqlite") == 0o600


def test_the_price_cache_makes_a_private_data_dir(tmp_path: Path) -> None:
    from fatctl.services.cost.price_cache import cache_path, cached_pricing

    path = cache_path(tmp_path / "data")
    old = os.umask(0o022)
    try:
        cached_pricing(path, "https://a/v1", 60, lambda: {"pricing": {}}, now=lambda: 1.0)
    finally:
        os.umask(old)
    assert (mode(tmp_path / "data"), mode(path.parent)) == (0o700, 0o700)
