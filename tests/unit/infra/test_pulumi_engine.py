"""The Pulumi engine up to the CLI boundary (the CLI cannot be installed on this machine):
the missing-CLI line, the passphrase, stale lock handling, error mapping, engine events."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fatctl.config import Settings
from fatctl.domain import ServicePlan
from fatctl.errors import CloudError, ConfigError, ToolMissing
from fatctl.infra.pulumi.engine import (
    PROJECT,
    PulumiEngine,
    command_error_line,
    derive_passphrase,
    step_from_event,
)
from fatctl.infra.pulumi.locks import clear_stale_locks, lock_dir, read_locks
from fatctl.sensitive import Sensitive
from tests.stacks.test_agent_program import make_spec

MASTER = Sensitive("bWFzdGVyLWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcyE=")
TOKEN = Sensitive("hcloud-token-abcdef0123456789")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.pulumi/bin/pulumi to be found
    return Settings(
        data_dir=tmp_path,
        database_url="sqlite://",
        master_key=MASTER,
        hcloud_token=TOKEN,
        pulumi_backend_url=f"file://{tmp_path / 'state'}",
    )


def test_missing_cli_is_one_clear_line(settings: Settings, tmp_path: Path) -> None:
    if shutil.which("pulumi"):
        pytest.skip("a Pulumi CLI is installed here; this test is about its absence")
    engine = PulumiEngine(settings)  # the real PATH lookup
    spec = make_spec()
    for call in (
        lambda: engine.plan(spec),
        lambda: engine.apply(spec),
        lambda: engine.refresh(spec),
        lambda: engine.destroy(spec, release_ips=False),
    ):
        with pytest.raises(ToolMissing) as err:
            call()
        line = err.value.one_line()
        assert line.startswith("the Pulumi CLI is not installed: install it with")
        assert "get.pulumi.com" in line and "FATCTL_ENGINE=hcloud" in line
        assert "\n" not in line and err.value.exit_code == 1
    assert not (tmp_path / "state").exists()  # nothing half-written


def test_cli_vanishing_at_the_boundary_is_the_same_line(settings: Settings, tmp_path: Path) -> None:
    # PATH claims a pulumi that is not there: the real Automation API fails when it execs it.
    engine = PulumiEngine(settings, which=lambda name: str(tmp_path / "bin" / "pulumi"))
    with pytest.raises(ToolMissing, match="the Pulumi CLI is not installed"):
        engine.plan(make_spec())


def test_passphrase_is_derived_never_the_key() -> None:
    one = derive_passphrase(MASTER)
    assert one == derive_passphrase(MASTER)
    assert one.reveal() != MASTER.reveal() and MASTER.reveal() not in one.reveal()
    assert len(one.reveal()) == 43
    assert derive_passphrase(Sensitive("another-master-key-value-0000000")) != one
    assert "***" in repr(one)


def test_master_key_is_required(settings: Settings, tmp_path: Path) -> None:
    engine = PulumiEngine(
        Settings(data_dir=tmp_path, database_url="sqlite://", hcloud_token=TOKEN),
        which=lambda name: "/usr/bin/pulumi",
    )
    with pytest.raises(ConfigError, match="FATCTL_MASTER_KEY"):
        engine.plan(make_spec())


def _write_lock(directory: Path, name: str, pid: int, hostname: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "pid": pid,
                "username": "root",
                "hostname": hostname,
                "timestamp": "2026-11-21T18:00:00Z",
            }
        )
    )
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_lock_rules(tmp_path: Path) -> None:
    url = f"file://{tmp_path}"
    directory = lock_dir(url, PROJECT, "agent-alice")
    assert directory == tmp_path / ".pulumi" / "locks" / "organization" / PROJECT / "agent-alice"
    host = socket.gethostname()
    dead = _write_lock(directory, "a", _dead_pid(), host)
    live = _write_lock(directory, "b", os.getpid(), host)
    remote = _write_lock(directory, "c", _dead_pid(), "other-host")
    cleared, held = clear_stale_locks(url, PROJECT, "agent-alice")
    assert [c.path for c in cleared] == [dead] and not dead.exists()
    assert sorted(h.path for h in held) == [live, remote] and live.exists() and remote.exists()
    assert lock_dir("s3://bucket/prefix", PROJECT, "agent-alice") is None
    (directory / "d.json").write_text("{not json")
    assert any(lock.pid == -1 for lock in read_locks(directory))  # unreadable: treated as held


def test_engine_clears_a_dead_runs_lock_then_reaches_the_cli(
    settings: Settings, tmp_path: Path
) -> None:
    directory = lock_dir(settings.pulumi_backend_url, PROJECT, "agent-alice")
    assert directory is not None
    _write_lock(directory, "killed", _dead_pid(), socket.gethostname())
    engine = PulumiEngine(settings, which=lambda name: str(tmp_path / "bin" / "pulumi"))
    with pytest.raises(ToolMissing):
        engine.plan(make_spec())
    assert list(directory.glob("*.json")) == []
    assert engine.notices and "cleared stale lock of stack agent-alice" in engine.notices[0]


def test_engine_refuses_a_live_lock_with_one_line(settings: Settings, tmp_path: Path) -> None:
    directory = lock_dir(settings.pulumi_backend_url, PROJECT, "agent-alice")
    assert directory is not None
    _write_lock(directory, "busy", os.getpid(), socket.gethostname())
    engine = PulumiEngine(settings, which=lambda name: "/usr/bin/pulumi")
    with pytest.raises(CloudError) as err:
        engine.apply(make_spec())
    assert err.value.code == "concurrent_update"
    assert f"pid {os.getpid()}" in err.value.one_line()


def test_concurrent_update_and_command_errors_map_to_one_line(settings: Settings) -> None:
    import pulumi.automation as auto
    from pulumi.automation._cmd import CommandResult

    engine = PulumiEngine(settings)
    spec = make_spec()
    with pytest.raises(CloudError) as err, engine._guard("up", spec):
        raise auto.ConcurrentUpdateError(
            CommandResult(
                "", "error: [409] Conflict: Another update is currently in progress.", 255
            )
        )
    assert err.value.code == "concurrent_update" and "another update" in err.value.one_line()
    stderr = f"warning: x\nerror: hcloud: unauthorized token {TOKEN.reveal()} (unauthorized)\n"
    with pytest.raises(CloudError) as err2, engine._guard("up", spec):
        raise auto.CommandError(CommandResult("", stderr, 255))
    line = err2.value.one_line()
    assert "unauthorized" in line and TOKEN.reveal() not in line
    assert command_error_line(Exception("boom"), []) == "boom"


def test_engine_events_fold_into_a_plan() -> None:
    from pulumi.automation import events

    def event(
        op: str, name: str, typ: str, old: dict, new: dict, diffs: list[str]
    ) -> events.EngineEvent:
        urn = f"urn:pulumi:agent-alice::{PROJECT}::{typ}::{name}"
        meta = {
            "op": op,
            "urn": urn,
            "type": typ,
            "provider": "",
            "old": {"type": typ, "urn": urn, "inputs": old},
            "new": {"type": typ, "urn": urn, "inputs": new},
            "diffs": diffs,
            "detailedDiff": {d: {"diffKind": "update", "inputDiff": True} for d in diffs},
        }
        return events.EngineEvent.from_json(
            {"sequence": 1, "timestamp": 0, "resourcePreEvent": {"metadata": meta}}
        )

    stream = [
        events.EngineEvent.from_json(
            {"sequence": 0, "timestamp": 0, "preludeEvent": {"config": {}}}
        ),
        event("same", "fatctl-alice", "hcloud:index/firewall:Firewall", {}, {}, []),
        event(
            "update",
            "alice",
            "hcloud:index/server:Server",
            {"serverType": "cx23"},
            {"serverType": "cx33"},
            ["serverType"],
        ),
    ]
    steps = [s for e in stream if (s := step_from_event(e))]
    assert len(steps) == 2
    from fatctl.infra.pulumi.preview import plan_from_steps

    plan = plan_from_steps(steps)
    assert plan.agent == "alice"
    assert [(c.kind, c.action, c.detail) for c in plan.changes if c.action != "same"] == [
        ("server", "update", "server_type cx23 -> cx33")
    ]
    assert make_spec(plan=ServicePlan.BYOK).stack_name == "agent-alice"


def test_the_file_backend_is_owner_only(settings: Settings, tmp_path: Path) -> None:
    """Stack state holds resource ids and outputs: its directory is made 0700 under any umask."""
    engine = PulumiEngine(settings, which=lambda name: str(tmp_path / "bin" / "pulumi"))
    old = os.umask(0o022)
    try:
        with pytest.raises(ToolMissing):  # the CLI is absent: the run stops after the preflight
            engine.plan(make_spec())
    finally:
        os.umask(old)
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
