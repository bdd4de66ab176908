"""The serving commands through the real CLI on a SQLite state database, before any box exists:
bad input (unknown channel kind, malformed bot token, bad sender id, a plan without its key) is
one line and exit 2 with nothing written; good input is recorded, never echoes a secret, and is
what provisioning will deliver; a BYOK agent without its key is refused before any cloud call."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fatctl.secrets import generate_master_key
from tests.fixtures.cli import fatctl_env, run_fatctl

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
MODEL_KEY = "sk-customer-0123456789abcdef"
SLACK_BOT = "xoxb-1234567890-0987654321-abcdefghijklmnop"
SLACK_APP = "xapp-1-A0123456789-1234567890123-abcdef0123456789"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # A cloud that answers nothing: a refusal that comes before any cloud call still says why.
    cloud = {"HCLOUD_TOKEN": "unused", "HCLOUD_ENDPOINT": "http://127.0.0.1:9/v1",
             "FATCTL_ENGINE": "hcloud", "FATCTL_DOMAIN": "agents.test"}  # fmt: skip
    env = fatctl_env(cloud, FATCTL_DATA_DIR=str(tmp_path), FATCTL_ACTOR="test",
                     FATCTL_MASTER_KEY=generate_master_key())  # fmt: skip
    run_fatctl("db", "upgrade", env=env, timeout=60, check=0)
    run_fatctl("agents", "create", "alice", "--owner", "alice@example.com", env=env, timeout=60,
               check=0)  # fmt: skip
    run_fatctl("agents", "create", "bob", "--owner", "bob@example.com", "--plan", "byok",
               "--model", "openai/gpt-5.1", env=env, timeout=60, check=0)  # fmt: skip
    return env


def _snapshot(tmp_path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(tmp_path / "fatctl.sqlite") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("channels", "add", "alice", "fax"), None, "unknown channel kind 'fax'"),
        (("channels", "add", "alice", "telegram"), "123:nope\n", "bot-token is malformed"),
        (("channels", "add", "alice", "telegram"), BOT_TOKEN + "\n" + BOT_TOKEN, "expected 1"),
        (("channels", "add", "alice", "slack"), "xoxb-1234567890abc\n", "expected 2 line"),
        (("channels", "add", "alice", "slack"), "xoxb-1234567890abc\nxoxb-1234567890abc\n",
         "app-token is malformed"),
        (("senders", "add", "alice", "12ab"), None, "is not a numeric Telegram user id"),
        (("senders", "add", "alice", "4242\n"), None, "Telegram user id"),
        (("senders", "add", "alice", "4242", "--kind", "fax"), None, "unknown sender kind"),
        (("model", "key", "alice"), MODEL_KEY, "managed plan: the platform key pays"),
        (("model", "set", "alice", "custom/x"), None, "custom model needs --base-url"),
        (("model", "set", "bob", "fireworks/x"), None, "BYOK supports"),
        (("model", "key", "bob"), "x" * 9000, "larger than 8192 bytes"),
        (("provision", "bob", "--owner", "bob@example.com"), None, "fatctl model key bob"),
        (("provision", "carol", "--owner", "c@example.com", "--plan", "byok"), None,
         "needs its key before provisioning"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    before = _snapshot(tmp_path)
    proc = run_fatctl(*args, env=env, input=stdin, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args", [("channels", "remove", "alice", "telegram"), ("senders", "remove", "alice", "4242")]
)
def test_removing_what_is_not_there_fails_in_one_line(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    before = _snapshot(tmp_path)
    proc = run_fatctl(*args, env=env, timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert _snapshot(tmp_path) == before


def test_changes_are_recorded_and_secrets_never_shown(env: dict[str, str], tmp_path: Path) -> None:
    add = run_fatctl("channels", "add", "alice", "telegram", "--json", env=env,
                     input=BOT_TOKEN + "\n", timeout=60, check=0)  # fmt: skip
    assert '"applied": "recorded"' in add.stdout  # no box yet: provisioning delivers it
    run_fatctl("senders", "add", "alice", "4242", env=env, timeout=60, check=0)
    key = run_fatctl("model", "key", "bob", env=env, input=MODEL_KEY, timeout=60, check=0)
    listing = run_fatctl("channels", "list", "alice", env=env, timeout=60, check=0)
    assert "telegram" in listing.stdout and "4242" in listing.stdout
    senders = run_fatctl("senders", "list", "alice", "--json", env=env, timeout=60, check=0)
    assert '"alice@example.com"' in senders.stdout  # the owner's address, added at signup
    shown = run_fatctl("model", "show", "bob", "--json", env=env, timeout=60, check=0)
    assert '"key_set": true' in shown.stdout and "openai-api-key (agent)" in shown.stdout
    audit = run_fatctl("audit", "--json", env=env, timeout=60, check=0)
    assert "channel.add" in audit.stdout and "model.key" in audit.stdout
    everything = add.stdout + add.stderr + key.stdout + key.stderr + listing.stdout + audit.stdout
    database = (tmp_path / "fatctl.sqlite").read_bytes()
    for secret in (BOT_TOKEN, MODEL_KEY):
        assert secret not in everything and secret.encode() not in database


def test_slack_and_whatsapp_are_added_like_telegram(env: dict[str, str]) -> None:
    """The boxes carry OpenClaw's Slack and WhatsApp plugins: both channels are accepted (Slack's
    two tokens on stdin, sealed; WhatsApp with none, it pairs by QR with `channels login`)."""
    slack = run_fatctl("channels", "add", "alice", "slack", "--json", env=env,
                       input=f"{SLACK_BOT}\n{SLACK_APP}\n", timeout=60, check=0)  # fmt: skip
    assert '"applied": "recorded"' in slack.stdout
    whatsapp = run_fatctl("channels", "add", "alice", "whatsapp", "--json", env=env, timeout=60,
                          check=0)  # fmt: skip
    assert '"applied": "recorded"' in whatsapp.stdout
    listing = run_fatctl("channels", "list", "alice", env=env, timeout=60, check=0)
    assert "slack" in listing.stdout and "whatsapp" in listing.stdout
    secrets = run_fatctl("secrets", "list", "--agent", "alice", env=env, timeout=60, check=0)
    assert "channel:slack:bot-token" in secrets.stdout
    assert "channel:slack:app-token" in secrets.stdout
    shown = slack.stdout + slack.stderr + listing.stdout + secrets.stdout
    assert SLACK_BOT not in shown and SLACK_APP not in shown


def test_dry_run_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    before = _snapshot(tmp_path)
    proc = run_fatctl("senders", "add", "alice", "5151", "--dry-run", "--json", env=env,
                      timeout=60, check=0)  # fmt: skip
    assert '"applied": "dry-run"' in proc.stdout
    assert _snapshot(tmp_path) == before


def test_removing_a_channel_forgets_its_token(env: dict[str, str], tmp_path: Path) -> None:
    run_fatctl("channels", "add", "alice", "telegram", env=env, input=BOT_TOKEN, timeout=60,
               check=0)  # fmt: skip
    secrets = run_fatctl("secrets", "list", "--agent", "alice", env=env, timeout=60, check=0)
    assert "channel:telegram:bot-token" in secrets.stdout
    run_fatctl("channels", "remove", "alice", "telegram", env=env, timeout=60, check=0)
    secrets = run_fatctl("secrets", "list", "--agent", "alice", env=env, timeout=60, check=0)
    assert "channel:telegram" not in secrets.stdout
