"""A fleet over two Hetzner projects (issue 17), each an emulator of its own with its own token.

Hetzner meters each project separately; its reference (api-evangelist/hetzner,
openapi/_original/hetzner-openapi.yml, "Rate Limiting") says: "The default limit is 3600
requests per hour and per Project." A project's limits are not exposed by the API (there is no
limits endpoint; a create past one answers "| `403` | `resource_limit_exceeded` | Error when
exceeding the maximum quantity of a resource for an account. |"), so room is the configured
`max_servers` counted against the agents the state database placed there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fatctl.config import HcloudProject
from fatctl.infra import make_engine
from fatctl.infra.projects import ProjectRouter
from fatctl.pacing.budget import budget_for
from fatctl.pacing.timing import Timing
from fatctl.sandbox.hetzner import start_emulator
from fatctl.sensitive import Sensitive
from fatctl.services.common.specs import spec_for_agent
from fatctl.services.fleet.preview import plan_fleet
from fatctl.services.provision.flow import provision
from fatctl.services.reconcile.run import cloud_view
from fatctl.state import repo
from fatctl.state.db import session_scope
from tests.integration.provision.conftest import make_plane
from tests.integration.provision.test_provision_flow import opts, request


@pytest.fixture
def second_project(tmp_path: Path) -> Iterator[Any]:
    """A second project: Hetzner's projects are separate APIs as far as a token can tell."""
    project = start_emulator(tmp_path / "hetzner-2", action_delay=0.05)
    yield project
    project.stop()  # pytest runs this however the test ended


@pytest.fixture
def fleet(tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any,
          second_project: Any) -> Iterator[Any]:  # fmt: skip
    """The top level's project holds one server at most; `p2` takes the rest."""
    plane = make_plane(tmp_path, hetzner_emulator, cloudflare_emulator)
    top = HcloudProject("", plane.settings.hcloud_token, hetzner_emulator.url, max_servers=1)
    p2 = HcloudProject("p2", Sensitive(second_project.token), second_project.url)
    plane.settings = replace(plane.settings, hcloud_projects=(top, p2))
    yield plane
    plane.db.dispose()


def _router(plane: Any) -> ProjectRouter:
    engine = make_engine(plane.settings, timing=Timing.instant())
    assert isinstance(engine, ProjectRouter)
    return engine


def _provision(plane: Any, name: str) -> None:
    provision(plane.db, plane.ring, plane.settings, _router(plane), request(name), "t", opts())


def _project_of(plane: Any, name: str) -> str:
    with session_scope(plane.db) as session:
        return repo.get_agent(session, name).project


def _servers(emulator: Any) -> set[str]:
    return {s["name"] for s in emulator.inventory()["servers"]}


def test_new_agents_go_to_a_project_with_room_and_are_recorded_there(
    fleet: Any, hetzner_emulator: Any, second_project: Any
) -> None:
    _provision(fleet, "first")
    _provision(fleet, "second")  # the top level's project is full (max_servers = 1)
    assert (_project_of(fleet, "first"), _project_of(fleet, "second")) == ("", "p2")
    assert _servers(hetzner_emulator) == {"first"} and _servers(second_project) == {"second"}
    # DNS points at the address the box got in its own project
    ip = next(s for s in second_project.inventory()["primary_ips"] if s["type"] == "ipv4")
    assert ("A", "second.sandbox.test", ip["ip"]) in fleet.dns()


def test_every_operation_on_an_agent_uses_its_recorded_project(
    fleet: Any, hetzner_emulator: Any, second_project: Any
) -> None:
    _provision(fleet, "first")
    _provision(fleet, "second")
    hetzner_emulator.reset_stats()
    second_project.reset_stats()
    router = _router(fleet)
    router.power_off("second")
    info = router.status("second")
    assert info is not None and info.status == "off"
    assert hetzner_emulator.stats()["calls"] == {}  # nothing reached the other project
    assert second_project.stats()["calls"]
    from fatctl.services.fleet.status import status

    rows = status(fleet.db, fleet.settings, router, [], health=False)
    assert {r["agent"]: (r["project"], r["cloud"].split()[0]) for r in rows} == {
        "first": ("", "running"), "second": ("p2", "off")}  # fmt: skip


def test_listing_reconcile_and_preview_span_every_project(
    fleet: Any, hetzner_emulator: Any, second_project: Any
) -> None:
    _provision(fleet, "first")
    _provision(fleet, "second")
    servers, ips, _ = cloud_view(fleet.settings)
    assert {s.name for s in servers} == {"first", "second"} and len(ips) == 4
    specs = [spec_for_agent(n, engine=fleet.db, settings=fleet.settings)
             for n in ("first", "second")]  # fmt: skip
    rows = plan_fleet(_router(fleet), specs)
    assert {n: r.error for n, r in rows.items()} == {"first": "", "second": ""}
    assert not any(r.plan is not None and r.plan.count("create") for r in rows.values())


def test_each_project_spends_its_own_rate_budget(fleet: Any) -> None:
    top, p2 = budget_for("hetzner"), budget_for("hetzner:p2")
    seen = top.requests_seen, p2.requests_seen
    _provision(fleet, "first")
    assert top.requests_seen > seen[0] and p2.requests_seen == seen[1]
    _provision(fleet, "second")
    assert p2.requests_seen > seen[1]
    assert top is not p2


def test_full_everywhere_is_one_line_before_any_cloud_call(fleet: Any, second_project: Any) -> None:
    top, p2 = fleet.settings.hcloud_projects
    fleet.settings = replace(fleet.settings, hcloud_projects=(top, replace(p2, max_servers=1)))
    _provision(fleet, "first")
    _provision(fleet, "second")
    second_project.reset_stats()
    with pytest.raises(Exception, match="every Hetzner project is full") as caught:
        _provision(fleet, "third")
    assert "\n" not in str(caught.value)
    assert second_project.stats()["calls"] == {}


def test_reconcile_repairs_land_in_the_project_holding_the_resource(
    fleet: Any, hetzner_emulator: Any, second_project: Any
) -> None:
    """An agent's resource is repaired in the agent's recorded project; one no agent owns is
    asked for in each project in turn, since a project that does not hold an id answers
    `not_found` ("| `404` | `not_found` | Entity not found. |")."""
    from hcloud import Client

    from fatctl.services.reconcile.fix import Fixer
    from fatctl.services.reconcile.views import FW_DELETE, RELABEL, Finding

    _provision(fleet, "first")
    _provision(fleet, "second")  # in p2; the emulators' ids start alike, so ids collide here
    server = next(s for s in second_project.inventory()["servers"] if s["name"] == "second")
    fixer = Fixer(fleet.db, fleet.settings)
    labels = (("managed-by", "fatctl"), ("agent", "second"), ("note", "fixed"))
    fixer.apply(Finding("label", "server second", "second", "", RELABEL, ref=str(server["id"]),
                        params=labels))  # fmt: skip
    servers = {s["name"]: s for s in hetzner_emulator.inventory()["servers"]}
    assert "note" not in servers["first"]["labels"]  # same id in the other project: untouched
    relabelled = next(s for s in second_project.inventory()["servers"] if s["name"] == "second")
    assert relabelled["labels"]["note"] == "fixed"
    p2 = Client(token=second_project.token, api_endpoint=second_project.url)
    orphan = p2.firewalls.create(name="orphan", labels={"managed-by": "fatctl"}).firewall
    fixer.apply(Finding("orphan", "firewall orphan", "", "", FW_DELETE, ref=str(orphan.id)))
    assert [f["name"] for f in second_project.inventory()["firewalls"]] == ["fatctl-second"]
    assert len(hetzner_emulator.inventory()["firewalls"]) == 1


def test_a_golden_image_boots_agents_of_its_own_project_only(fleet: Any) -> None:
    """Hetzner's reference distinguishes "System Images: Distribution Images maintained by us"
    from "Snapshot Images: Maintained by you"; a snapshot is a resource of the project that
    made it, seen only with that project's token, like everything behind a token. An agent
    placed in another project boots the stock image rather than failing on an image its
    project cannot see."""
    from fatctl.state.models import GoldenImage

    _provision(fleet, "first")
    _provision(fleet, "second")  # in p2
    with session_scope(fleet.db) as session:
        session.add(GoldenImage(runtime_version="2026.9.6", node_version="24.21.0",
                                base_image="debian-12", architecture="x86", builder="b",
                                image_id="4711", state="available", actor="t"))  # fmt: skip
    images = {n: spec_for_agent(n, engine=fleet.db, settings=fleet.settings, golden=True).image
              for n in ("first", "second")}  # fmt: skip
    assert images == {"first": "4711", "second": "debian-12"}
