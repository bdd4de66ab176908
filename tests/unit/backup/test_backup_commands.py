"""What fatctl sends to the box's fat-backup, and the backup names it lets reach a shell."""

from __future__ import annotations

import shlex

import pytest

from cloud_init import layout as L
from fatctl.cli.backup import backup_name
from fatctl.errors import BadInput
from fatctl.remote.commands import backup as cmd


def test_every_command_asks_for_the_one_json_answer() -> None:
    commands = [cmd.run_backup("manual"), cmd.list_backups(), cmd.verify_backup(None),
                cmd.verify_backup("20261207T030000Z-manual"),
                cmd.restore_backup("20261207T030000Z-manual")]  # fmt: skip
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == L.BACKUP_SCRIPT and "--json" in argv


def test_stopping_the_gateway_and_keeping_it_stopped() -> None:
    assert "--stop-gateway" not in cmd.run_backup("manual", keep_stopped=True)
    argv = shlex.split(cmd.run_backup("pre-move", stop_gateway=True, keep_stopped=True))
    assert argv[1:4] == ["run", "--kind", "pre-move"]
    assert argv[-2:] == ["--stop-gateway", "--keep-stopped"]
    assert shlex.split(cmd.restore_backup("n", start=False))[-1] == "--no-start"
    assert shlex.split(cmd.verify_backup(None))[2] == "--newest"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("20261207T030000Z-scheduled", "20261207T030000Z-scheduled"),
        ("backups/20261207T030000Z-pre-move.tar.gz.age", "20261207T030000Z-pre-move"),
    ],
)
def test_backup_names_as_listed_or_as_object_keys(raw: str, name: str) -> None:
    assert backup_name(raw) == name


@pytest.mark.parametrize(
    "raw",
    ["", "latest", "20261207T030000Z-x;rm -rf /", "../20261207T030000Z-manual", "20261207-manual"],
)
def test_anything_else_is_bad_input(raw: str) -> None:
    with pytest.raises(BadInput):
        backup_name(raw)
