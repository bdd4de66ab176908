"""What a lost create may have made: look it up by name (and our labels) before a retry.

A create whose connection died, or that a gateway answered with a 5xx, may have been carried
out. Retrying it blindly either duplicates the resource or, since Hetzner names are unique,
fails with `uniqueness_error` and sends the whole apply down its slower adopt path. These
finders, handed to `Hcloud.call(recover=...)`, run before each retry after such a failure and
return the resource in the shape the create would have answered (None: not there, create it).
Something of that name without our labels is not adopted here: the create then fails on the
name and the engine's adopt path decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hcloud.firewalls import CreateFirewallResponse
from hcloud.primary_ips import CreatePrimaryIPResponse
from hcloud.servers import CreateServerResponse

from fatctl.domain import managed_labels
from fatctl.infra.desired import DesiredBox, KeyDecl
from fatctl.infra.hcloud.client import Hcloud


def is_ours(found: Any, labels: Mapping[str, str]) -> bool:
    have = dict(getattr(found, "labels", None) or {})
    return all(have.get(k) == v for k, v in labels.items())


def firewall(h: Hcloud, box: DesiredBox) -> Callable[[], CreateFirewallResponse | None]:
    def find() -> CreateFirewallResponse | None:
        found = h.client.firewalls.get_by_name(box.firewall_name)
        if found is None or not is_ours(found, box.labels):
            return None
        return CreateFirewallResponse(firewall=found, actions=[])

    return find


def primary_ip(h: Hcloud, box: DesiredBox, name: str) -> Callable[[], Any]:
    def find() -> CreatePrimaryIPResponse | None:
        found = h.client.primary_ips.get_by_name(name)
        if found is None or not is_ours(found, box.labels):
            return None
        return CreatePrimaryIPResponse(primary_ip=found, action=None)

    return find


def server(h: Hcloud, box: DesiredBox) -> Callable[[], CreateServerResponse | None]:
    def find() -> CreateServerResponse | None:
        found = h.client.servers.get_by_name(box.server_name)
        if found is None or not is_ours(found, box.labels):
            return None
        # Its create and start may still run: the caller waits for them as for a fresh create.
        running = found.get_actions(status=["running"])
        lost: Any = None  # the create's own action: finished or among `running`
        return CreateServerResponse(
            server=found, action=lost, next_actions=list(running), root_password=None
        )

    return find


def ssh_key(h: Hcloud, key: KeyDecl) -> Callable[[], Any]:
    def find() -> Any:
        fp = key.fingerprint
        colons = ":".join(fp[i : i + 2] for i in range(0, len(fp), 2))
        found = h.client.ssh_keys.get_by_fingerprint(colons)
        return found if found is not None and is_ours(found, managed_labels()) else None

    return find
