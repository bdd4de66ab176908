"""The Hetzner emulator against Hetzner's documentation, raw over HTTP (no SDK to smooth the
answers): status codes of the error codes, label rules, the pagination `Link` header, primary
IPs after the 2026 changes, and firewall rule CIDRs. Each test quotes what it follows; "the
document" is Hetzner's OpenAPI document vendored under tests/contract/hetzner/data/."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hcloud.images import Image
from hcloud.server_types import ServerType


@pytest.fixture
def api(hetzner_emulator: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {hetzner_emulator.token}"}
    with httpx.Client(base_url=hetzner_emulator.url, headers=headers, timeout=30) as client:
        yield client


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def _running_server(hcloud_client: Any, name: str = "box") -> Any:
    created = hcloud_client.servers.create(
        name=name, server_type=ServerType(name="cx23"), image=Image(name="debian-12")
    )
    created.action.wait_until_finished()
    for action in created.next_actions or []:
        action.wait_until_finished()
    return hcloud_client.servers.get_by_id(created.server.id)


def test_invalid_input_is_422(api: httpx.Client) -> None:
    """The document's "Error Codes" table: "| `422` | `invalid_input` | Error while parsing or
    processing the input. |" (the emulator answered 400)."""
    body = {"name": "bad_name!", "server_type": "cx23", "image": "debian-12"}
    response = api.post("/servers", json=body)
    assert _error(response) == (422, "invalid_input")
    fields = response.json()["error"]["details"]["fields"]
    assert fields and fields[0]["name"] == "name"


def test_server_not_stopped_is_422(api: httpx.Client, hcloud_client: Any) -> None:
    """POST /primary_ips/{id}/actions/unassign, "Operation specific errors": "| `422` |
    `server_not_stopped` | The [Server] is running, but needs to be powered off |" (was 409)."""
    server = _running_server(hcloud_client)
    ip_id = server.public_net.primary_ipv4.id
    assert _error(api.post(f"/primary_ips/{ip_id}/actions/unassign")) == (
        422,
        "server_not_stopped",
    )


def test_assign_conflicts_use_the_documented_codes(api: httpx.Client, hcloud_client: Any) -> None:
    """POST /primary_ips/{id}/actions/assign: "| `422` | `primary_ip_already_assigned` |
    [Primary IP] is already assigned to a different [Server] |" and "| `422` |
    `server_has_ipv4` | The [Server] already has an IPv4 address |" (the emulator said
    `conflict`, 409, which fatctl retries as transient)."""
    one, two = _running_server(hcloud_client, "one"), _running_server(hcloud_client, "two")
    for server in (one, two):
        server.power_off().wait_until_finished()
    taken = one.public_net.primary_ipv4.id
    body = {"assignee_id": two.id, "assignee_type": "server"}
    assert _error(api.post(f"/primary_ips/{taken}/actions/assign", json=body)) == (
        422,
        "primary_ip_already_assigned",
    )
    spare = api.post("/primary_ips", json={"name": "spare", "type": "ipv4", "location": "fsn1"})
    spare_id = spare.json()["primary_ip"]["id"]
    assert _error(api.post(f"/primary_ips/{spare_id}/actions/assign", json=body)) == (
        422,
        "server_has_ipv4",
    )


def test_an_injected_503_is_unavailable(api: httpx.Client, hetzner_emulator: Any) -> None:
    """The table: "| `503` | `unavailable` | A service or product is currently not available. |"
    while `service_error` is a 422 ("| `422` | `service_error` | Error within a service. |")."""
    hetzner_emulator.set_faults(error_rate=1.0, error_statuses=[503])
    assert _error(api.get("/locations")) == (503, "unavailable")


@pytest.mark.parametrize("key", ["hetzner.cloud/managed", "hetzner.cloud/x-y"])
def test_reserved_label_prefix_is_refused(api: httpx.Client, key: str) -> None:
    """The document, "Labels": "The `hetzner.cloud/` prefix is reserved and cannot be used."."""
    created = api.post("/firewalls", json={"name": "fw", "labels": {key: "v"}})
    assert _error(created) == (422, "invalid_input")
    fw = api.post("/firewalls", json={"name": "fw", "labels": {"example.com/my": "label"}})
    assert fw.status_code == 201
    relabel = api.put(f"/firewalls/{fw.json()['firewall']['id']}", json={"labels": {key: "v"}})
    assert _error(relabel) == (422, "invalid_input")


@pytest.mark.parametrize(
    "labels", [{"env\n": "prod"}, {"env": "prod\n"}, {"a" * 64: "x"}, {"env": "x" * 64}]
)
def test_labels_are_whole_and_bounded(api: httpx.Client, labels: dict[str, str]) -> None:
    """ "Labels": the name segment "must be a string of 63 characters or less, beginning and
    ending with an alphanumeric character"; a trailing newline is not alphanumeric."""
    assert _error(api.post("/firewalls", json={"name": "fw", "labels": labels})) == (
        422,
        "invalid_input",
    )


def test_server_name_ending_in_a_newline_is_refused(api: httpx.Client) -> None:
    """POST /servers `name`: "Name of the Server to create (must be unique per Project and a
    valid hostname as per RFC 1123)."; "box\\n" is not a hostname."""
    body = {"name": "box\n", "server_type": "cx23", "image": "debian-12"}
    assert _error(api.post("/servers", json=body)) == (422, "invalid_input")


def test_lists_carry_a_link_header(api: httpx.Client) -> None:
    """The document, "Pagination": "Responses contain a `Link` header with pagination
    information." Example: `Link: <https://api.hetzner.cloud/v1/actions?page=2&per_page=5>;
    rel="prev", <...?page=4&per_page=5>; rel="next", <...?page=6&per_page=5>; rel="last"`,
    "responses may only contain some of the above `rel` values"."""
    middle = api.get("/locations", params={"page": 2, "per_page": 2})
    pagination = middle.json()["meta"]["pagination"]
    assert pagination["last_page"] == 3
    links = {rel: httpx.URL(link["url"]).params for rel, link in middle.links.items()}
    assert {rel: (p["page"], p["per_page"]) for rel, p in links.items()} == {
        "prev": ("1", "2"),
        "next": ("3", "2"),
        "last": ("3", "2"),
    }
    first = api.get("/locations", params={"per_page": 50})
    assert set(first.links) == {"last"}
    assert httpx.URL(first.links["last"]["url"]).path.endswith("/v1/locations")


def test_unassigned_primary_ip_reports_unassigned(api: httpx.Client, hcloud_client: Any) -> None:
    """Hetzner's changelog (2026-04-27, "Primary IPs will return unassigned"), quoted in
    hcloud-python PR #647: "As of 1 August 2026, the behavior of the Primary IP `assignee_type`
    property will change, and will return `unassigned` when the Primary IP is not assigned
    (when `assignee_id` is `null`)." The request's `assignee_type` is "now optional"."""
    spare = api.post("/primary_ips", json={"name": "spare", "type": "ipv4", "location": "fsn1"})
    assert spare.status_code == 201
    ip = spare.json()["primary_ip"]
    assert (ip["assignee_id"], ip["assignee_type"]) == (None, "unassigned")
    server = _running_server(hcloud_client)
    attached = api.get(f"/primary_ips/{server.public_net.primary_ipv4.id}").json()["primary_ip"]
    assert (attached["assignee_id"], attached["assignee_type"]) == (server.id, "server")


def test_datacenter_is_gone_from_primary_ips_and_servers(
    api: httpx.Client, hcloud_client: Any
) -> None:
    """hcloud-python v2.23.0 release notes: "Removed the deprecated Datacenter property from the
    Server and PrimaryIP resources. Since the property was already removed from the Hetzner
    Cloud API, we do not consider this a breaking change"; the document: "The `datacenter` key
    is deprecated in favor of `location` and will be removed after 01 July 2026."."""
    server = _running_server(hcloud_client)
    listed = api.get("/primary_ips").json()["primary_ips"]
    assert listed and all("datacenter" not in ip and ip["location"]["name"] for ip in listed)
    assert "datacenter" not in api.get(f"/servers/{server.id}").json()["server"]
    by_datacenter = api.post(
        "/primary_ips", json={"name": "old", "type": "ipv4", "datacenter": "fsn1-dc14"}
    )
    assert _error(by_datacenter) == (422, "invalid_input")  # no location: it is required


def _rule(**cidrs: list[str]) -> dict[str, Any]:
    return {"direction": "in", "protocol": "tcp", "port": "22", **cidrs}


@pytest.mark.parametrize(
    "cidrs",
    [["10.0.0.1/24"], ["not-an-ip/8"], ["10.0.0.1"], ["10.0.0.0/33"], ["10.0.0.0/24"] * 101],
)
def test_firewall_rules_need_valid_cidr_blocks(api: httpx.Client, cidrs: list[str]) -> None:
    """Firewall rule `source_ips`: "IPs must be provided in CIDR block notation. You can specify
    100 CIDR blocks at most. The CIDR blocks may refer to networks (with empty host bits) or
    single hosts. For example, a network could be defined with `10.0.1.0/24` [...] and a single
    host with `10.0.1.1/32`"; bad input is `invalid_input`, a 422."""
    created = api.post("/firewalls", json={"name": "fw", "rules": [_rule(source_ips=cidrs)]})
    assert _error(created) == (422, "invalid_input")


def test_firewall_ipv6_blocks_come_back_canonical(api: httpx.Client) -> None:
    """Rule `source_ips`: "IPv6 CIDRs will be transformed to their canonical form according to
    RFC5952"."""
    rules = [_rule(source_ips=["2001:DB8:0:0::/64", "10.0.1.1/32", "::/0"])]
    created = api.post("/firewalls", json={"name": "fw", "rules": rules})
    assert created.status_code == 201
    assert created.json()["firewall"]["rules"][0]["source_ips"] == [
        "2001:db8::/64",
        "10.0.1.1/32",
        "::/0",
    ]
