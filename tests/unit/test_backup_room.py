"""The free-disk rule for opening a backup (`fatctl.services.backup.room`) and its mirror in the
box's `fat-backup` (`room-plan`, rendered as a box gets it), held together."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from cloud_init import layout as L
from cloud_init.files import render_files
from fatctl.backup_keys import generate
from fatctl.domain import R2Location, ServicePlan
from fatctl.services.backup.room import (
    FALLBACK_FACTOR,
    MARGIN_KB,
    room_to_fetch_kb,
    room_to_unpack_kb,
)
from tests.unit.cloud_init.variants import Variant, make_spec

MIB = 1024 * 1024
CASES = [(0, 0, 0), (1, 1, 1), (2 * MIB, 2 * MIB, 27 * MIB), (5 * MIB, 5 * MIB, 3 * MIB),
         (3 * 2**30, 3 * 2**30, 2**30), (123_457, 123_001, 9_876_543)]  # fmt: skip


def test_fetching_needs_the_download_and_its_decryption_side_by_side() -> None:
    assert room_to_fetch_kb(0) == MARGIN_KB
    assert room_to_fetch_kb(10 * MIB) == 20 * 1024 + MARGIN_KB
    assert room_to_fetch_kb(1) == 1 + MARGIN_KB  # rounded up, never down


def test_unpacking_needs_what_the_trailer_says_plus_block_rounding() -> None:
    # 2 MiB of archive that unpacks to 27 MiB (SQLite compresses well): far above 2.5x.
    assert room_to_unpack_kb(2 * MIB, 27 * MIB) == (27 * MIB + 27 * MIB // 8) // 1024 + MARGIN_KB
    assert room_to_unpack_kb(2 * MIB, 27 * MIB) > 2.5 * 2 * 1024 + MARGIN_KB


def test_a_trailer_smaller_than_the_archive_is_not_believed() -> None:
    """gzip's ISIZE is the size modulo 4 GiB: a 5 GiB state can read as 1 GiB."""
    wrapped = room_to_unpack_kb(3 * 2**30, 2**30)
    plain = FALLBACK_FACTOR * 3 * 2**30
    assert wrapped == (plain + plain // 8) // 1024 + MARGIN_KB


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, recipient = generate()
    spec = replace(make_spec(Variant("debian-12", False, ServicePlan.MANAGED, False)),
                   r2=R2Location("https://r2.example.com", "fat-agents", "agents/ag-7f3k2/"),
                   backup_recipient=recipient)  # fmt: skip
    path = tmp_path_factory.mktemp("room") / "fat-backup"
    path.write_text(render_files(spec)[L.BACKUP_SCRIPT].content)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(("sealed", "plain", "unpacked"), CASES)
def test_the_box_script_computes_the_same(script: Path, sealed: int, plain: int,
                                          unpacked: int) -> None:  # fmt: skip
    out = subprocess.run([str(script), "room-plan", str(sealed), str(plain), str(unpacked)],
                         capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    assert out.stdout.split() == [str(room_to_fetch_kb(sealed)),
                                  str(room_to_unpack_kb(plain, unpacked))]  # fmt: skip


@pytest.mark.parametrize("args", [(), ("1", "2"), ("1", "2", "x"), ("-1", "2", "3")])
def test_room_plan_refuses_bad_usage_with_exit_2(script: Path, args: tuple[str, ...]) -> None:
    out = subprocess.run([str(script), "room-plan", *args], capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert out.returncode == 2 and out.stdout == ""
