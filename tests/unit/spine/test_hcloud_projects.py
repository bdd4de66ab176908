"""Several Hetzner projects in one fleet (issue 17): `[hcloud.projects.NAME]` as `load_settings`
reads them, the settings bound to one project, and where a new agent is placed. A fatctl.toml
without projects resolves exactly as before they existed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fatctl.config import HcloudProject, Settings, load_settings
from fatctl.errors import CloudError, ConfigError
from fatctl.sensitive import Sensitive
from fatctl.services.fleet.placement import choose_project

TOML = """
[hcloud]
token = "top-token"
max_servers = 90
[hcloud.projects.eu-2]
token_env = "HCLOUD_TOKEN_EU2"
max_servers = 95
reserve = 0.2
[hcloud.projects.eu-3]
token = "eu3-token"
endpoint = "https://other.example.com/v1"
"""


def _load(tmp_path: Path, text: str, **env: str) -> Settings:
    (tmp_path / "fatctl.toml").write_text(text)
    return load_settings({"FATCTL_CONFIG": str(tmp_path / "fatctl.toml"), **env})


def test_projects_are_read_with_their_own_tokens_caps_and_budgets(tmp_path: Path) -> None:
    s = _load(tmp_path, TOML, HCLOUD_TOKEN_EU2="eu2-token")
    assert s.several_projects
    top, eu2, eu3 = s.hcloud_projects
    assert (top.name, top.max_servers, top.token.reveal()) == ("", 90, "top-token")
    assert (eu2.name, eu2.max_servers, eu2.reserve, eu2.token.reveal()) == (
        "eu-2", 95, 0.2, "eu2-token")  # fmt: skip
    assert eu3.endpoint == "https://other.example.com/v1" and eu3.max_servers is None
    bound = s.for_project("eu-3")
    assert bound.hcloud_token.reveal() == "eu3-token" and bound.hcloud_project == "eu-3"
    assert "eu2-token" not in repr(s) and "eu3-token" not in str(s.public_view())


def test_without_projects_nothing_changes(tmp_path: Path) -> None:
    s = _load(tmp_path, '[hcloud]\ntoken = "t"\n')
    assert s.hcloud_projects == () and not s.several_projects
    assert s.hcloud_project is None
    assert s.for_project("").hcloud_token.reveal() == "t"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[hcloud.projects.eu-2]\ntoken_env = "NOPE"\n', "NOPE, which is not set"),
        ("[hcloud.projects.eu-2]\nmax_servers = 3\n", "has no token"),
        ('[hcloud.projects.EU]\ntoken = "t"\n', "project name 'EU'"),
        ('[hcloud.projects.default]\ntoken = "t"\n', "project name 'default'"),
        ('[hcloud.projects.eu-2]\ntoken = "t"\nmax_servers = 0\n', "at least 1"),
        ('[hcloud.projects.eu-2]\ntoken = "t"\nreserve = 1.5\n', "fraction"),
    ],
)
def test_bad_project_tables_are_one_line_config_errors(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        _load(tmp_path, text)
    assert "\n" not in str(caught.value)


def test_unknown_project_names_the_known_ones(tmp_path: Path) -> None:
    s = _load(tmp_path, TOML, HCLOUD_TOKEN_EU2="x")
    with pytest.raises(ConfigError, match="default, eu-2, eu-3"):
        s.for_project("eu-9")


def test_placement_takes_the_first_project_with_room() -> None:
    token = Sensitive("t")
    projects = (HcloudProject("", token, "e", 2), HcloudProject("b", token, "e", 1),
                HcloudProject("c", token, "e"))  # fmt: skip
    assert choose_project(projects, {}) == ""
    assert choose_project(projects, {"": 2}) == "b"
    assert choose_project(projects, {"": 2, "b": 1}) == "c"
    with pytest.raises(CloudError, match=r"default 2/2, b 1/1") as caught:
        choose_project(projects[:2], {"": 2, "b": 1})
    assert caught.value.code == "resource_limit_exceeded"


def test_each_project_paces_with_its_own_budget_and_reserve(tmp_path: Path) -> None:
    from fatctl.infra.hcloud.client import Hcloud

    s = _load(tmp_path, TOML, HCLOUD_TOKEN_EU2="eu2-token")
    top, eu2, eu3 = (Hcloud(s.for_project(n)) for n in ("", "eu-2", "eu-3"))
    assert len({id(top.budget), id(eu2.budget), id(eu3.budget)}) == 3
    assert (top.budget.api, eu2.budget.api) == ("hetzner", "hetzner:eu-2")
    assert eu2.budget.reserve == 0.2 and eu3.budget.reserve == top.budget.reserve == 0.05
    assert Hcloud(s.for_project("eu-2")).budget is eu2.budget  # one per project per process
