"""The box's `fat-backup` refuses to open a backup the scratch directory has no room for
(`fatctl.services.backup.room`): `verify` and `restore` stop in one line (exit 1: a full disk is
the box's condition, not bad usage) before downloading, or before unpacking, and leave the live
state, the gateway and the identity's tmpfs as they were. Run on this host as
tests/integration/storage/test_fat_backup_script.py runs it (real age, rclone against the S3
stand-in, OpenClaw's stub); `df` is a stub here that reports a nearly full disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cloud_init import layout as L
from tests.integration.storage.test_fat_backup_script import Box, box  # noqa: F401

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("age", "rclone", "jq", "runuser")),
        reason="needs root, age, rclone, jq and runuser",
    ),
]


def full_disk_after(on: Box, calls: int, free_kb: int = 2048) -> None:
    """`df -Pk` answers the real figure for the first `calls` calls, then `free_kb` free."""
    counter = on.root / "df.count"
    counter.write_text("0")
    stub = on.root / "bin/df"
    stub.write_text(f"""#!/bin/sh
n=$(cat {counter}); echo $((n + 1)) > {counter}
if [ "$n" -lt {calls} ]; then exec /bin/df "$@"; fi
echo "Filesystem 1024-blocks Used Available Capacity Mounted on"
echo "/dev/sda1 40000000 39990000 {free_kb} 99% /"
""")
    stub.chmod(0o755)


def untouched(on: Box, before: list[str], state: bytes) -> None:
    assert on.systemctl_calls() == before  # the gateway was never stopped
    assert Path(f"{L.STATE_DIR}/state/openclaw.sqlite").read_bytes() == state
    assert not Path(L.BACKUP_IDENTITY).exists()
    assert not list(Path(L.BACKUP_DIR).glob("work.*"))  # nothing half-written left behind


@pytest.mark.parametrize(("calls", "stage"), [(0, "fetch"), (1, "unpack")])
@pytest.mark.parametrize("command", ["verify", "restore"])
def test_no_room_refuses_in_one_line_before_anything_is_opened(
    box: Box,  # noqa: F811
    calls: int,
    stage: str,
    command: str,
) -> None:
    _, taken = box.run("run", "--kind", "manual", "--json")
    state = Path(f"{L.STATE_DIR}/state/openclaw.sqlite").read_bytes()
    before = box.systemctl_calls()
    box.deliver_identity()
    full_disk_after(box, calls)
    extra = ("--activate",) if command == "restore" else ()
    code, refused = box.run(command, taken["name"], *extra, "--json", ok=False)
    assert code == 1 and refused["ok"] is False
    assert refused["error"].startswith(f"not enough disk to {stage} {taken['name']}: 2 MiB free")
    assert "\n" not in refused["error"] and "MiB needed" in refused["error"]
    untouched(box, before, state)


def test_with_room_verify_still_opens(box: Box) -> None:  # noqa: F811
    _, taken = box.run("run", "--kind", "manual", "--json")
    box.deliver_identity()
    _, verified = box.run("verify", taken["name"], "--json")
    assert verified["name"] == taken["name"]
