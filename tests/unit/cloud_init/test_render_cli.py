"""`fatctl render`, run as the real console command: from a JSON spec and from the database."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from cloud_init.render import render_files
from cloud_init.specjson import redact_host_keys, spec_to_dict
from fatctl.domain import HostKeyPair, ServicePlan
from tests.fixtures.cli import CONSOLE_SCRIPT, fatctl_env, run_fatctl
from tests.unit.cloud_init.variants import Variant, make_spec

VARIANT = Variant("debian-12", False, ServicePlan.MANAGED, True)


def fatctl(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # The installed console script rather than `python -m fatctl`: it is what this file tests.
    return run_fatctl(
        *args, env=fatctl_env(env or {}), cwd=cwd, timeout=None, launcher=CONSOLE_SCRIPT
    )


def _all_text(root: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(root.rglob("*")) if p.is_file())


@pytest.fixture
def spec_file(tmp_path: Path, host_key: HostKeyPair) -> Path:
    path = tmp_path / "alice.json"
    path.write_text(json.dumps(spec_to_dict(make_spec(VARIANT, host_keys=(host_key,)))))
    return path


def test_render_from_spec_json(tmp_path: Path, spec_file: Path, host_key: HostKeyPair) -> None:
    proc = fatctl("render", "alice", "--spec-json", str(spec_file), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    out = tmp_path / "render" / "alice"  # the default --out
    assert summary["out"] == "render/alice" and summary["validated"] is True
    expected = render_files(redact_host_keys(make_spec(VARIANT, host_keys=(host_key,))))
    assert summary["files"] == len(expected) + 1
    for path, item in expected.items():
        written = out / "files" / path.lstrip("/")
        assert written.read_text() == item.content
        assert written.stat().st_mode & 0o777 == item.mode
    user_data = (out / "user-data").read_text()
    assert user_data.startswith("#cloud-config\n")
    assert summary["user_data_bytes"] == len(user_data.encode())
    # The real host private key is nowhere on disk or on the terminal.
    secret_line = host_key.private_key_pem.splitlines()[1]
    assert secret_line not in _all_text(out) + proc.stdout + proc.stderr
    assert host_key.public_key in user_data


def test_rerender_replaces_previous_render(tmp_path: Path, spec_file: Path) -> None:
    out = tmp_path / "out"
    assert (
        fatctl(
            "render", "alice", "--spec-json", str(spec_file), "--out", str(out), cwd=tmp_path
        ).returncode
        == 0
    )
    (out / "files" / "stale").write_text("from an older render")
    assert (
        fatctl(
            "render", "alice", "--spec-json", str(spec_file), "--out", str(out), cwd=tmp_path
        ).returncode
        == 0
    )
    assert not (out / "files" / "stale").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging left


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("{not json", (), "spec is not JSON"),
        ('{"name": "alice", "colour": "red"}', (), "unknown AgentSpec field(s): colour"),
        (None, ("bob",), "describes agent 'alice', not 'bob'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, spec_file: Path, content, args, message
) -> None:
    if content is not None:
        spec_file.write_text(content)
    name = args[0] if args else "alice"
    proc = fatctl("render", name, "--spec-json", str(spec_file), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert not (tmp_path / "render").exists()


def test_refuses_to_overwrite_an_unrelated_directory(tmp_path: Path, spec_file: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    proc = fatctl(
        "render", "alice", "--spec-json", str(spec_file), "--out", str(precious), cwd=tmp_path
    )
    assert proc.returncode == 2 and "not a previous render" in proc.stderr
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]


def test_render_from_the_state_database(tmp_path: Path) -> None:
    """The spine's spec_for_agent path: agent and operator key recorded, then rendered."""
    (tmp_path / "fatctl.toml").write_text("")
    env = {
        "FATCTL_CONFIG": str(tmp_path / "fatctl.toml"),
        "FATCTL_DATA_DIR": str(tmp_path / "data"),
        "FATCTL_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite'}",
        "FATCTL_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "FATCTL_DOMAIN": "agents.example.com",
    }
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "op")], check=True
    )
    for args in (
        ("db", "upgrade"),
        ("keys", "add", "--operator", "--file", str(tmp_path / "op.pub"), "--no-push"),
        ("agents", "create", "alice", "--owner", "alice@example.com", "--image", "debian-13"),
        ("render", "alice", "--out", "r", "--json"),
    ):
        proc = fatctl(*args, cwd=tmp_path, env=env)
        assert proc.returncode == 0, (args, proc.stderr)
    user_data = (tmp_path / "r" / "user-data").read_text()
    assert "image debian-13" in user_data and "alice.agents.example.com" in user_data
    assert (tmp_path / "op.pub").read_text().split()[1] in user_data
    assert "not rendered: fatctl provision passes the real key" in user_data


def test_validation_problems_fail_and_write_nothing(
    tmp_path: Path,
    spec_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command's handling of a bad render (the validators' own bite is in test_validate)."""
    import cloud_init.validate
    from fatctl.cli.main import run

    monkeypatch.setattr(
        cloud_init.validate, "validate_user_data", lambda text: ["x.service: bad", "y.sh: worse"]
    )
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        run(["render", "alice", "--spec-json", str(spec_file), "--out", str(out)])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert "problem: x.service: bad" in captured.out and "problem: y.sh: worse" in captured.out
    assert "has 2 problem(s)" in captured.err
    assert not out.exists()
