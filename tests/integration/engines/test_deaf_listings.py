"""Listings whose answer ignores the filter fatctl asked with (issue 16): the SDK's list calls
go out without their label selector (Cloudflare's without its name and tag filters), so the
emulator answers with everything in the project or zone. fatctl must still see only its own
resources: a foreign server is never bound, shown, resized or deleted as an agent's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fatctl.dns.cloudflare_dns import CloudflareDns
from fatctl.errors import CloudError
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.hcloud.engine import HcloudEngine
from fatctl.pacing.retry import RateBudget
from fatctl.pacing.timing import Timing
from tests.integration.engines.conftest import agent_spec, emulator_settings
from tests.integration.engines.test_cloudflare import V4, V6, cf_settings, ours

FOREIGN = {"agent": "alice", "team": "someone-else"}  # an agent label, but not fatctl's


@pytest.fixture
def deaf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hcloud list call goes out without its label selector."""
    from hcloud.firewalls.client import FirewallsClient
    from hcloud.images.client import ImagesClient
    from hcloud.primary_ips.client import PrimaryIPsClient
    from hcloud.servers.client import ServersClient

    for cls in (ServersClient, FirewallsClient, PrimaryIPsClient, ImagesClient):
        real = cls.get_list

        def get_list(self: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            kwargs.pop("label_selector", None)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "get_list", get_list)


@pytest.fixture
def foreign(hcloud_client: Any) -> Iterator[Any]:
    """Somebody else's server, primary IP and firewall in the same project."""
    from hcloud.images import Image
    from hcloud.locations import Location
    from hcloud.server_types import ServerType

    srv = hcloud_client.servers.create(
        name="not-ours", server_type=ServerType(name="cx23"), image=Image(name="debian-12"),
        location=Location(name="fsn1"), labels=dict(FOREIGN),
    ).server  # fmt: skip
    fsn1 = Location(name="fsn1")
    hcloud_client.primary_ips.create(type="ipv4", name="not-ours-ip", location=fsn1,
                                     assignee_type="server", labels=dict(FOREIGN))  # fmt: skip
    hcloud_client.firewalls.create("not-ours-fw", labels=dict(FOREIGN))
    yield srv


def kinds(hcloud_client: Any) -> dict[str, set[str]]:
    return {
        "servers": {s.name for s in hcloud_client.servers.get_all()},
        "ips": {i.name for i in hcloud_client.primary_ips.get_all()},
        "firewalls": {f.name for f in hcloud_client.firewalls.get_all()},
    }


def test_an_agent_without_a_box_is_not_given_a_foreign_one(
    engine: HcloudEngine, hcloud_client: Any, foreign: Any, deaf: None
) -> None:
    carol = agent_spec("carol")
    assert engine.status(carol) is None
    engine.destroy(carol, release_ips=True)
    assert {"not-ours"} <= kinds(hcloud_client)["servers"]
    assert {"not-ours-ip"} <= kinds(hcloud_client)["ips"]
    assert {"not-ours-fw"} <= kinds(hcloud_client)["firewalls"]


def test_own_box_is_found_beside_a_foreign_one(
    engine: HcloudEngine, hetzner_emulator: Any, tmp_path: Path, foreign: Any, deaf: None
) -> None:
    from fatctl.infra.hcloud.fleet import observe_fleet
    from fatctl.infra.hcloud.inventory import fleet_inventory

    info = engine.apply(agent_spec("alice"), user_data="#cloud-config\n")
    status = engine.status("alice")
    assert status is not None and status.server_id == info.server_id != str(foreign.id)
    assert not engine.plan(agent_spec("alice")).has_changes
    h = Hcloud(emulator_settings(hetzner_emulator, tmp_path), Timing.instant())
    view = observe_fleet(h, ["alice"], whole_fleet=False)
    assert view.problems == {}
    seen = view.observed["alice"]
    assert seen.server is not None and seen.server.id == info.server_id
    assert set(seen.ips) == {"ipv4", "ipv6"} and seen.ips["ipv4"].name == "alice-ipv4"
    inventory = fleet_inventory(h)
    assert {s.name for s in inventory.servers} == {"alice"}
    assert "not-ours-ip" not in {i.name for i in inventory.ips}
    assert "not-ours-fw" not in {f.name for f in inventory.firewalls}


def test_cost_and_image_listings_skip_foreign_objects(
    engine: HcloudEngine,
    hetzner_emulator: Any,
    tmp_path: Path,
    hcloud_client: Any,
    foreign: Any,
    deaf: None,
) -> None:
    from fatctl.infra.hcloud.catalog import fleet
    from fatctl.infra.hcloud.images import GoldenImages
    from fatctl.services.image.recipe import golden_selector

    made = hcloud_client.servers.create(
        name="plain",
        server_type=foreign.server_type,
        image=foreign.image,
        location=foreign.location,
    )  # no labels at all
    made.action.wait_until_finished()
    plain = made.server
    hcloud_client.servers.create_image(plain, description="theirs", type="snapshot",
                                       labels={"role": "golden"})  # fmt: skip
    engine.apply(agent_spec("alice"), user_data="#cloud-config\n")
    items = fleet(Hcloud(emulator_settings(hetzner_emulator, tmp_path), Timing.instant()))
    assert set(items) == {"alice"} and items["alice"].server_type == "cx23"
    assert GoldenImages(emulator_settings(hetzner_emulator, tmp_path)).list(golden_selector()) == []


def test_two_primary_ips_of_one_family_are_refused(
    engine: HcloudEngine, hcloud_client: Any
) -> None:
    from hcloud.locations import Location

    engine.apply(agent_spec("alice"), user_data="#cloud-config\n")
    hcloud_client.primary_ips.create(type="ipv4", name="alice-ipv4-again",
                                     location=Location(name="fsn1"), assignee_type="server",
                                     labels={"managed-by": "fatctl", "agent": "alice"})  # fmt: skip
    with pytest.raises(CloudError, match="2 primary IPv4s") as err:
        engine.status("alice")
    assert err.value.code == "duplicate"


@pytest.fixture
def deaf_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cloudflare's record listing goes out without its name and tag filters."""
    from cloudflare.resources.dns.records import RecordsResource

    real = RecordsResource.list

    def listing(self: Any, **kwargs: Any) -> Any:
        kwargs.pop("name", None)
        kwargs.pop("tag", None)
        return real(self, **kwargs)

    monkeypatch.setattr(RecordsResource, "list", listing)


def test_dns_sees_only_the_agents_name_and_our_tag(
    cloudflare_emulator: Any, cloudflare_client: Any, tmp_path: Path, deaf_dns: None
) -> None:
    from fatctl.dns.cloudflare_inventory import tagged_records

    zone = cloudflare_emulator.zone_id("sandbox.test")
    cloudflare_client.dns.records.create(zone_id=zone, name="bob.sandbox.test", type="A",
                                         content="198.51.100.1", ttl=1)  # fmt: skip
    dns = CloudflareDns(cf_settings(cloudflare_emulator, tmp_path), timing=Timing.instant(),
                        sleep=lambda s: None, budget=RateBudget("cf-deaf"))  # fmt: skip
    assert [c.action for c in dns.upsert("alice", V4, V6)] == ["create", "create"]
    assert {r["name"] for r in tagged_records(dns)} == {"alice.sandbox.test"}
    assert [c.action for c in dns.delete("alice")] == ["delete", "delete"]
    assert ours(cloudflare_emulator) == []
    assert len(ours(cloudflare_emulator, "bob.sandbox.test")) == 1
