"""The provision flow against the API emulators (no root): infra apply, DNS, recorded steps,
resume after an injected failure, no duplicates, destroy keeping or releasing primary IPs.

The box steps (SSH, secrets, cloud-init, health) need a real box: they are skipped here by
request and run for real in tests/e2e/test_provision_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from fatctl.domain import AgentState
from fatctl.errors import FatctlError
from fatctl.pacing.poll import Backoff
from fatctl.services.agents.records import NewAgent
from fatctl.services.common.steps import BOX_STEPS
from fatctl.services.provision.destroy import destroy
from fatctl.services.provision.flow import Options, provision


def request(name: str, owner: str = "demo@example.com") -> NewAgent:
    return NewAgent(name, owner, "managed", "cx23", "fsn1", "debian-12", "2026.9.6")


def opts(events: list[Any] | None = None, validate: bool = False) -> Options:
    sink = events if events is not None else []
    return Options(
        skip=BOX_STEPS,
        backoff=Backoff.instant(),
        validate=validate,
        emit=lambda kind, **f: sink.append((kind, f.get("step"))),
    )


def agent_row(plane: Any, name: str) -> Any:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(plane.db) as session:
        a = repo.get_agent(session, name)
        session.expunge(a)
        return a


def test_provision_creates_server_ips_and_dns_once(plane: Any) -> None:
    events: list[Any] = []
    done = provision(plane.db, plane.ring, plane.settings, plane.infra(), request("alpha"),
                     "test", opts(events, validate=True))  # fmt: skip
    assert done.state == AgentState.PROVISIONING.value  # box steps skipped: not ready yet
    assert done.server_id and done.ipv4 and done.ipv6
    server = plane.servers()["alpha"]
    assert str(server["id"]) == done.server_id
    assert server["labels"]["managed-by"] == "fatctl"
    assert plane.dns() == [("A", "alpha.sandbox.test", done.ipv4),
                           ("AAAA", "alpha.sandbox.test", done.ipv6)]  # fmt: skip
    assert ("step.done", "infra") in events and ("step.done", "dns") in events
    assert ("step.skipped", "ssh") in events
    assert agent_row(plane, "alpha").last_step == "infra"  # DNS comes before the server

    # A rerun does not repeat recorded side effects and creates nothing new.
    events.clear()
    again = provision(plane.db, plane.ring, plane.settings, plane.infra(), request("alpha"),
                      "test", opts(events))  # fmt: skip
    assert again.server_id == done.server_id and again.ipv4 == done.ipv4
    assert ("step.kept", "infra") in events and ("step.kept", "dns") in events
    assert ("step.done", "infra") not in events and ("step.done", "dns") not in events
    assert len(plane.servers()) == 1 and len(plane.primary_ips()) == 2 and len(plane.dns()) == 2


def test_other_owner_is_refused(plane: Any) -> None:
    provision(plane.db, plane.ring, plane.settings, plane.infra(), request("beta"), "t", opts())
    with pytest.raises(FatctlError, match="belongs to"):
        provision(plane.db, plane.ring, plane.settings, plane.infra(),
                  request("beta", "mallory@example.com"), "t", opts())  # fmt: skip


def test_failed_dns_step_resumes_without_duplicates(plane: Any) -> None:
    plane.cloudflare.set_faults(error_rate=1.0, error_statuses=[500])
    with pytest.raises(FatctlError):
        provision(plane.db, plane.ring, plane.settings, plane.infra(), request("gamma"), "t",
                  opts())  # fmt: skip
    row = agent_row(plane, "gamma")
    assert row.last_step == "render" and row.last_error
    assert row.state == AgentState.PROVISIONING.value
    # DNS comes first: its IPs exist (recorded), the server does not, and no record yet.
    assert plane.dns() == [] and plane.servers() == {} and len(plane.primary_ips()) == 2
    assert {row.ipv4, row.primary_ipv4_id} != {""}
    plane.cloudflare.clear_faults()
    plane.hetzner.reset_stats()
    events: list[Any] = []
    done = provision(plane.db, plane.ring, plane.settings, plane.infra(), request("gamma"), "t",
                     opts(events))  # fmt: skip
    assert ("step.done", "infra") in events and ("step.done", "dns") in events
    assert len(plane.servers()) == 1 and len(plane.primary_ips()) == 2
    assert (done.ipv4, done.ipv6) == (row.ipv4, row.ipv6)  # the server got the reserved IPs
    assert plane.dns() == [("A", "gamma.sandbox.test", done.ipv4),
                           ("AAAA", "gamma.sandbox.test", done.ipv6)]  # fmt: skip
    assert agent_row(plane, "gamma").last_error == ""


def test_dropped_create_response_converges(plane: Any) -> None:
    """The work is done but the answer is lost: the next apply adopts instead of duplicating."""
    plane.hetzner.set_faults(drop_response_rate=1.0)
    with pytest.raises(FatctlError):
        provision(plane.db, plane.ring, plane.settings, plane.infra(), request("delta"), "t",
                  opts())  # fmt: skip
    plane.hetzner.clear_faults()
    done = provision(plane.db, plane.ring, plane.settings, plane.infra(), request("delta"), "t",
                     opts())  # fmt: skip
    assert list(plane.servers()) == ["delta"]
    assert len(plane.primary_ips()) == 2
    assert str(plane.servers()["delta"]["id"]) == done.server_id


def test_destroy_keeps_ips_unless_released(plane: Any) -> None:
    for name in ("keep", "drop"):
        provision(plane.db, plane.ring, plane.settings, plane.infra(), request(name), "t", opts())
    destroy(plane.db, plane.ring, plane.settings, plane.infra(), "keep", "t")
    destroy(plane.db, plane.ring, plane.settings, plane.infra(), "drop", "t", release_ips=True)
    assert plane.servers() == {} and plane.dns() == []
    kept = {ip["name"] for ip in plane.primary_ips()}
    assert len(kept) == 2 and all("keep" in n for n in kept), kept
    assert agent_row(plane, "keep").state == AgentState.DESTROYED.value
    assert agent_row(plane, "keep").ipv4  # still the customer's address
    # idempotent: a second destroy changes nothing and says so
    again = destroy(plane.db, plane.ring, plane.settings, plane.infra(), "keep", "t")
    assert again.steps[0]["result"] == "unchanged"
