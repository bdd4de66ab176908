"""Review 29, finding 4: on a fleet over several Hetzner projects (`[hcloud.projects.*]`) the
engine is a `ProjectRouter`, whose `hcloud_client()` refuses ("several Hetzner projects: ask
for one agent's project"), so archive's `snapshots` step failed on every run after `infra` had
already deleted the server, and the agent never reached `archived`. The step now asks the
agent's own project, as move does. Two emulated projects, each with its own token (the
fixture of tests/integration/provision/test_projects.py); no box.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fatctl.services.lifecycle.archive import archive
from fatctl.services.lifecycle.suspend import Context, suspend
from tests.integration.lifecycle.test_suspend_archive import context
from tests.integration.provision.test_projects import (
    _project_of,
    _provision,
    _router,
    fleet,
    second_project,
)

__all__ = ["fleet", "second_project"]  # the fixtures this module uses


def routed(plane: Any) -> Context:
    """The lifecycle context over the fleet's `ProjectRouter`, as the CLI makes it."""
    return replace(context(plane), infra=_router(plane))


def snapshots(emulator: Any) -> list[str]:
    return [str(i["id"]) for i in emulator.inventory()["images"] if i["type"] == "snapshot"]


def test_archive_of_an_agent_in_the_second_project_deletes_its_snapshot_there(
    fleet: Any, hetzner_emulator: Any, second_project: Any
) -> None:
    _provision(fleet, "first")  # the top level's project holds one server
    _provision(fleet, "second")
    assert _project_of(fleet, "second") == "p2"
    image = suspend(routed(fleet), "second", snapshot=True, no_backup=True).detail["snapshot_id"]
    assert snapshots(second_project) == [str(image)] and snapshots(hetzner_emulator) == []

    out = archive(routed(fleet), "second")
    assert out.state == "archived"
    assert snapshots(second_project) == []
