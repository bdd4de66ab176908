"""A fleet over two Hetzner projects (issue 17, review findings 1, 7, 8, 9), each an emulator
of its own with its own token, driven through the provision flow and the CLI.

Hetzner scopes everything behind a token to one project: its reference
(api-evangelist/hetzner, openapi/_original/hetzner-openapi.yml) says "The default limit is 3600
requests per hour and per Project", and a snapshot ("Snapshot Images: Maintained by you") or an
SSH key is a resource of the project that made it, so the same key has its own id in each
project and a snapshot of one project is an invalid image in another. No emulator changes here:
two separate emulators are two separate projects.
"""

# ruff: noqa: F811 (the two-project fixtures are test_projects' own, imported by name)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hcloud import Client
from sqlmodel import select

from fatctl.infra.hcloud import keys as hcloud_keys
from fatctl.infra.projects import recorded_projects
from fatctl.services.agents.records import create_agent
from fatctl.services.cost.report import fleet_cost
from fatctl.state import repo
from fatctl.state.db import session_scope
from fatctl.state.models import GoldenImage, HcloudKeyId, SshKey
from tests.integration.provision.test_call_counts import api_calls, cli, cli_env, reset
from tests.integration.provision.test_projects import (  # noqa: F401 (fixtures)
    _project_of,
    _provision,
    _servers,
    fleet,
    second_project,
)
from tests.integration.provision.test_provision_flow import request


def test_an_agent_placed_in_another_project_never_boots_the_first_ones_golden_image(
    fleet: Any, hetzner_emulator: Any, second_project: Any
) -> None:
    """The top level's project has a golden snapshot and is full: the next new agent goes to
    p2, and its server there must not be asked for the top level's snapshot (the real API
    refuses an image the token's project cannot see: `invalid_input` on `image`). The agent
    is placed before the spec (and so the image) is chosen."""
    _provision(fleet, "first")
    top = Client(token=hetzner_emulator.token, api_endpoint=hetzner_emulator.url)
    server = top.servers.get_by_name("first")
    snapshot = top.servers.create_image(server, type="snapshot", description="golden").image
    with session_scope(fleet.db) as session:
        image_id = str(snapshot.id)
        session.add(GoldenImage(runtime_version="2026.9.6", node_version="24.21.0",
                                base_image="debian-12", architecture="x86", builder="b",
                                image_id=image_id, state="available", actor="t"))  # fmt: skip
    _provision(fleet, "second")
    assert _project_of(fleet, "second") == "p2" and _servers(second_project) == {"second"}
    p2 = Client(token=second_project.token, api_endpoint=second_project.url)
    booted = p2.servers.get_by_name("second")
    assert booted is not None and booted.image.name == "debian-12"  # p2 has no golden image


def test_agents_not_yet_placed_take_no_room_in_any_project(
    fleet: Any, hetzner_emulator: Any
) -> None:
    """An agent recorded but never provisioned has no project (NULL, not the top level's ""),
    so it does not fill the top level's `max_servers` = 1; and the router, which read it
    as unplaced, finds its project once provisioning placed it."""
    create_agent(fleet.db, fleet.ring, request("waiting").validated(), "t")
    project_of = recorded_projects(fleet.settings)
    assert project_of("waiting") is None and _project_of(fleet, "waiting") is None
    _provision(fleet, "first")
    assert _project_of(fleet, "first") == "" and _servers(hetzner_emulator) == {"first"}
    _provision(fleet, "waiting")  # the top level's project is full now
    assert project_of("waiting") == "p2"


def _key_calls(*emulators: Any) -> dict[str, int]:
    return {k: n for e in emulators for k, n in api_calls(e).items() if "ssh_keys" in k}


def test_fleet_keys_are_uploaded_to_every_project_once_and_never_listed_again(
    fleet: Any, hetzner_emulator: Any, second_project: Any
) -> None:
    """`keys add` (upload_added) puts a fleet key into every project, and each project's id is
    kept: provisions in either project, in fresh processes (the per-process cache emptied),
    create servers without any SSH key call, also after switching between projects."""
    from fatctl.services.access.fleet_key_ids import upload_added

    with session_scope(fleet.db) as session:
        fingerprints = [k.fingerprint for k in session.exec(select(SshKey)).all()]
    for fingerprint in fingerprints:
        upload_added(fleet.settings, fleet.db, fingerprint)
    top_ids = {str(k["id"]) for k in hetzner_emulator.inventory()["ssh_keys"]}
    p2_ids = {str(k["id"]) for k in second_project.inventory()["ssh_keys"]}
    assert len(top_ids) == len(p2_ids) == len(fingerprints)
    with session_scope(fleet.db) as session:
        rows = session.exec(select(HcloudKeyId)).all()
        assert len({row.project for row in rows}) == 2 and len(rows) == 2 * len(fingerprints)
    for name in ("first", "second", "third"):  # default, p2, p2
        hcloud_keys._ENSURED.clear()  # a new process: only the database's ids are known
        reset(hetzner_emulator, second_project)
        _provision(fleet, name)
        assert _key_calls(hetzner_emulator, second_project) == {}, name
    with session_scope(fleet.db) as session:
        repo.get_agent(session, "first").state = "destroyed"  # room again in the top level's
    hcloud_keys._ENSURED.clear()
    reset(hetzner_emulator, second_project)
    _provision(fleet, "fourth")
    assert _project_of(fleet, "fourth") == "" and _key_calls(hetzner_emulator) == {}


def test_cost_covers_agents_in_every_project(fleet: Any) -> None:
    """Each agent's server is read in its own project, so none is reported from the database
    alone (source "database": server not found)."""
    _provision(fleet, "first")
    _provision(fleet, "second")  # in p2
    report = fleet_cost(fleet.db, fleet.settings)
    assert {c.agent: c.source for c in report.costs} == {"first": "hetzner", "second": "hetzner"}


def test_box_api_shows_every_projects_budget(
    tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any, second_project: Any
) -> None:
    """`fatctl box api` reads each project's budget with one cheap call there: Hetzner meters
    "3600 requests per hour and per Project"."""
    env = cli_env(tmp_path, hetzner_emulator, cloudflare_emulator)
    config = tmp_path / "fatctl.toml"
    config.write_text(f'[hcloud.projects.p2]\ntoken = "{second_project.token}"\n'
                      f'endpoint = "{second_project.url}"\n')  # fmt: skip
    env["FATCTL_CONFIG"] = str(config)
    cli(env, "db", "upgrade")
    out = cli(env, "box", "api", "--json")
    assert out.returncode == 0, out.stderr
    apis = {row["api"]: row for row in json.loads(out.stdout)}
    assert {"hetzner", "hetzner:p2"} <= set(apis)
    assert apis["hetzner"]["requests_seen"] >= 1 and apis["hetzner:p2"]["requests_seen"] >= 1
