"""Label selectors and pagination, through the SDK's own list calls."""

from __future__ import annotations

from hcloud.images import Image
from hcloud.server_types import ServerType

LABELS = {
    "a1": {"managed-by": "fatctl", "env": "prod", "plan": "pro"},
    "a2": {"managed-by": "fatctl", "env": "staging"},
    "a3": {"managed-by": "other", "env": "prod", "legacy": "yes"},
    "a4": {},
}


def _names(client, selector):
    return sorted(s.name for s in client.servers.get_all(label_selector=selector))


def test_label_selector_operators(hcloud_client):
    for name, labels in LABELS.items():
        hcloud_client.servers.create(
            name=name,
            server_type=ServerType(name="cpx22"),
            image=Image(name="ubuntu-24.04"),
            labels=labels,
        )
    assert _names(hcloud_client, "managed-by=fatctl") == ["a1", "a2"]
    assert _names(hcloud_client, "managed-by==fatctl") == ["a1", "a2"]
    assert _names(hcloud_client, "managed-by!=fatctl") == ["a3", "a4"]
    assert _names(hcloud_client, "legacy") == ["a3"]
    assert _names(hcloud_client, "!legacy") == ["a1", "a2", "a4"]
    assert _names(hcloud_client, "env in (prod,staging)") == ["a1", "a2", "a3"]
    assert _names(hcloud_client, "env notin (prod)") == ["a2", "a4"]
    assert _names(hcloud_client, "managed-by=fatctl,env=prod,plan") == ["a1"]
    assert _names(hcloud_client, "env in (prod, staging),!plan") == ["a2", "a3"]


def test_pagination_across_pages(hcloud_client):
    for i in range(57):
        hcloud_client.servers.create(
            name=f"s{i:02d}",
            server_type=ServerType(name="cx33"),
            image=Image(name="debian-12"),
            labels={"n": str(i)},
        )
    everything = hcloud_client.servers.get_all()  # the SDK follows next_page (50 per page)
    assert len(everything) == 57 and len({s.id for s in everything}) == 57
    page, meta = hcloud_client.servers.get_list(page=3, per_page=20)
    assert [s.name for s in page] == [f"s{i:02d}" for i in range(40, 57)]
    p = meta.pagination
    assert (p.page, p.per_page, p.previous_page, p.next_page, p.last_page, p.total_entries) == (
        3,
        20,
        2,
        None,
        3,
        57,
    )
    _, meta = hcloud_client.servers.get_list(page=1, per_page=20)
    assert meta.pagination.next_page == 2
    # ServersClient.get_list has no sort argument; the SDK's raw request does
    desc = hcloud_client.request("GET", "/servers", params={"sort": "name:desc", "per_page": 3})
    assert [s["name"] for s in desc["servers"]] == ["s56", "s55", "s54"]
