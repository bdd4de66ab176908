"""ARM types (issue 17): Hetzner's cax types are arm64. A real provision of one renders the
same user-data (its install script picks Node's arm64 build on the box, see
tests/unit/cloud_init/test_node_architecture.py) and the server is created from the image name
at the type's architecture. The sandbox's boxes are x86-64 nspawn containers, so a sandbox run
with an ARM type is refused as bad input before anything is written or asked of a cloud.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fatctl.services.agents.records import NewAgent
from fatctl.services.provision.flow import provision
from tests.integration.provision.test_provision_flow import opts
from tests.integration.provision.test_refusals import nothing_written


def arm(name: str) -> NewAgent:
    return NewAgent(name, "demo@example.com", "managed", "cax11", "fsn1", "debian-12", "2026.9.6")


def test_sandbox_refuses_an_arm_type_before_any_write(plane: Any) -> None:
    """Fails on the old code: the sandbox provisioned a cax agent, whose box could not boot."""
    sandboxed = replace(opts(), sandbox=True)

    def run() -> object:
        return provision(plane.db, plane.ring, plane.settings, plane.infra(), arm("armed"), "t",
                         sandboxed)  # fmt: skip

    err = nothing_written(plane, run)
    assert err.one_line() == (
        "agent armed has the ARM server type cax11: the sandbox's boxes are x86-64 only, so "
        "use an x86 type (e.g. cx23) there"
    )


def test_arm_agent_provisions_outside_the_sandbox(plane: Any) -> None:
    done = provision(plane.db, plane.ring, plane.settings, plane.infra(), arm("ampere"), "t",
                     opts())  # fmt: skip
    server = plane.servers()["ampere"]
    assert str(server["id"]) == done.server_id and done.ipv4
