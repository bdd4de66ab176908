"""Shell completion through the real `fatctl` process, the way bash and zsh call it, over a
state database of 10,000 agents: the matching agent names, rollout ids and context names
come back, without SQLAlchemy or any cloud SDK imported, and a completion that cannot read
the database completes nothing, silently."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fatctl.state import migrate
from fatctl.state.rawdb import connect
from tests.fixtures.cli import MODULE, fatctl_env, run_fatctl
from tests.fixtures.fleet_rows import CREATED, seed_agents

AGENTS = 10_000
NOT_ON_THE_PATH = ("sqlalchemy", "sqlmodel", "alembic", "hcloud", "pulumi", "cloudflare",
                   "paramiko", "cryptography", "jinja2", "httpx", "rich")  # fmt: skip
IMPORTTIME = (sys.executable, "-X", "importtime", "-m", "fatctl")


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """10,000 agents and one halted rollout in the database; two contexts in fatctl.toml."""
    migrate.upgrade(db_url)
    seed_agents(db_url, AGENTS)
    with connect(db_url) as conn:
        mark = "%s" if type(conn).__module__.startswith("psycopg") else "?"
        conn.cursor().execute(
            "INSERT INTO rollouts (kind, target, policy, state, actor, reason, created_at) "
            f"VALUES ('upgrade', '2026.9.7', '{{}}', 'halted', 'ci', '', {mark})",
            (CREATED,),
        )
        conn.commit()
    (tmp_path / "fatctl.toml").write_text("[contexts.staging]\n[contexts.production]\n")
    return fatctl_env(
        FATCTL_DATABASE_URL=db_url,
        FATCTL_DATA_DIR=str(tmp_path / "data"),
        FATCTL_CONFIG=str(tmp_path / "fatctl.toml"),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
    )


def bash(
    env: dict[str, str], line: str, launcher: tuple[str, ...] = MODULE
) -> subprocess.CompletedProcess[str]:
    """What bash's completion function runs for `line`, the cursor at its end."""
    shell = {"_FATCTL_COMPLETE": "complete_bash", "COMP_WORDS": line,
             "COMP_CWORD": str(len(line.split(" ")) - 1)}  # fmt: skip
    proc = run_fatctl(env={**env, **shell}, timeout=60, check=0, launcher=launcher)
    if launcher == MODULE:
        assert proc.stderr == "", proc.stderr
    return proc


def zsh(env: dict[str, str], line: str) -> list[str]:
    """The values zsh's completion function is given for `line`."""
    shell = {"_FATCTL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": line}
    proc = run_fatctl(env={**env, **shell}, timeout=60, check=0)
    # One `"value"` or `"value":"help"` per line, the first after `_arguments '*: :((`.
    return re.findall(r'(?:^|\(\()"([^"]*)"', proc.stdout, re.MULTILINE)


def test_agent_names_complete_from_a_large_fleet(env: dict[str, str]) -> None:
    tens = [f"agent0123{d}" for d in range(10)]
    assert bash(env, "fatctl status agent0123").stdout.split() == tens
    assert bash(env, "fatctl provision agent09999").stdout.split() == ["agent09999"]
    assert zsh(env, "fatctl creds rotate agent00001 agent0123") == tens
    every = bash(env, "fatctl status ").stdout.split()
    assert len(every) == AGENTS and every[0] == "agent00000" and every[-1] == "agent09999"
    assert bash(env, "fatctl status nobody").stdout.split() == []
    assert bash(env, "fatctl status agent%").stdout.split() == []  # LIKE's wildcards are literal


def test_rollout_ids_and_contexts_complete(env: dict[str, str]) -> None:
    assert bash(env, "fatctl rollout show ").stdout.split() == ["1"]
    assert zsh(env, "fatctl rollout abort ") == ["1"]
    assert bash(env, "fatctl context use ").stdout.split() == ["production", "staging"]
    assert bash(env, "fatctl context show st").stdout.split() == ["staging"]
    assert "context" in bash(env, "fatctl con").stdout.split()  # the new command's name


def test_completion_imports_no_sqlalchemy_and_no_sdk(env: dict[str, str]) -> None:
    proc = bash(env, "fatctl status agent0000", launcher=IMPORTTIME)
    assert proc.stdout.split() == [f"agent0000{d}" for d in range(10)]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()}
    assert "fatctl.state.fastread" in imported  # the measurement sees the completion's imports
    assert [m for m in imported if m.split(".")[0] in NOT_ON_THE_PATH] == []


def test_a_database_it_cannot_read_completes_nothing_silently(tmp_path: Path) -> None:
    env = fatctl_env(FATCTL_DATA_DIR=str(tmp_path / "none"), XDG_CONFIG_HOME=str(tmp_path))
    assert bash(env, "fatctl status a").stdout.split() == []  # no database: none is created either
    assert not (tmp_path / "none").exists()
    (tmp_path / "empty.sqlite").touch()  # a database never migrated
    empty = {**env, "FATCTL_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite'}"}
    assert bash(empty, "fatctl status a").stdout.split() == []
    assert bash({**env, "FATCTL_CONTEXT": "qa"}, "fatctl status a").stdout.split() == []


def test_global_flags_and_every_agent_argument_complete(env: dict[str, str]) -> None:
    """Global flags before the command are taken out of the shell's words (they used to make
    the line complete nothing), and every command taking an agent completes its name."""
    tens = [f"agent0123{d}" for d in range(10)]
    assert bash(env, "fatctl --context production status agent0123").stdout.split() == tens
    assert bash(env, "fatctl -o json -q status agent0123").stdout.split() == tens
    assert zsh(env, "fatctl --context=staging ssh agent0123") == tens
    assert bash(env, "fatctl model show agent0123").stdout.split() == tens
    assert bash(env, "fatctl exec --agents agent00001,agent0123").stdout.split() == [
        f"agent00001,{name}" for name in tens
    ]
