"""The completers' own logic, in-process over a small SQLite fleet: the next name of an
`--agents a,b` list, `--label` keys then values, rollout ids with what they roll."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fatctl.cli import completion
from fatctl.cli.context import reset_context
from fatctl.state import migrate
from tests.fixtures.fleet_rows import seed_agents


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    migrate.upgrade(url)
    seed_agents(url, 3)
    monkeypatch.setenv("FATCTL_DATABASE_URL", url)
    monkeypatch.setenv("FATCTL_CONFIG", str(tmp_path / "fatctl.toml"))
    (tmp_path / "fatctl.toml").write_text("")
    monkeypatch.delenv("FATCTL_CONTEXT", raising=False)
    reset_context()
    yield
    reset_context()


def test_agent_lists_offer_the_next_name_once(fleet: None) -> None:
    assert completion.agent_lists("") == ["agent00000", "agent00001", "agent00002"]
    assert completion.agent_lists("agent00001,agent0") == [
        "agent00001,agent00000", "agent00001,agent00002"
    ]  # fmt: skip
    assert completion.agent_names("agent0000") == ["agent00000", "agent00001", "agent00002"]


def test_labels_offer_columns_then_their_values(fleet: None) -> None:
    assert "location=" in completion.labels("") and "state=" in completion.labels("")
    assert completion.labels("location=") == ["location=fsn1"]
    assert completion.labels("owner_id=") == []  # only the columns --label selects on


def test_nothing_readable_completes_nothing(
    fleet: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FATCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.sqlite'}")
    reset_context()
    assert completion.agent_names("") == completion.rollout_ids("") == []
    assert completion.labels("state=") == []
