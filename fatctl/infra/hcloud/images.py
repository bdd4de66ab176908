"""Golden images at Hetzner: the builder server's life (create from a stock image, shut down,
snapshot, delete) and the lookups of labelled snapshots. One of the hcloud modules: callers
get `Builder` and `GoldenRef` data, never SDK objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import ServerCreatePublicNetwork

from fatctl.config import Settings
from fatctl.errors import CloudError
from fatctl.infra.hcloud import ops
from fatctl.infra.hcloud.client import Hcloud
from fatctl.infra.selector import Selector
from fatctl.pacing.poll import Poll
from fatctl.pacing.timing import Timing


@dataclass(frozen=True)
class Builder:
    server_id: str
    name: str
    ipv4: str


@dataclass(frozen=True)
class GoldenRef:
    """A labelled snapshot, as listed."""

    image_id: str
    description: str
    created: str
    architecture: str
    status: str
    labels: tuple[tuple[str, str], ...] = ()


def _ref(image: Any) -> GoldenRef:
    created = image.created.isoformat() if hasattr(image.created, "isoformat") else image.created
    return GoldenRef(str(image.id), image.description or "", str(created or ""),
                     str(image.architecture or ""), str(image.status or ""),
                     tuple(sorted((image.labels or {}).items())))  # fmt: skip


class GoldenImages:
    """The Hetzner calls `fatctl image build` and the golden-image lookup need."""

    def __init__(
        self,
        settings: Settings,
        *,
        timing: Timing | None = None,
        poll: Poll | None = None,
    ) -> None:
        timing = timing or Timing.of(settings)
        # Waits on Hetzner's side (a server powering off) pace at the API's poll interval.
        self.poll = poll or Poll(timing.poll_interval)
        self.h = Hcloud(settings, timing, sleep=self.poll.sleep)

    def _server(self, server_id: str) -> Any:
        return self.h.call("read server", partial(self.h.client.servers.get_by_id, int(server_id)))

    def create_builder(
        self, name: str, server_type: str, location: str, image: str, user_data: str,
        labels: dict[str, str],
    ) -> Builder:  # fmt: skip
        """A started server with auto-deleted addresses (a builder keeps no IP)."""
        sdk_labels: Any = labels  # the SDK annotates a str; the API wants the map
        create = partial(
            self.h.client.servers.create,
            name=name,
            server_type=ServerType(name=server_type),
            image=Image(name=image),
            user_data=user_data,
            labels=sdk_labels,
            location=Location(name=location),
            public_net=ServerCreatePublicNetwork(enable_ipv4=True, enable_ipv6=True),
        )
        try:
            resp = self.h.call("create image builder", create)
        except CloudError as exc:
            # A create whose answer was lost may still have made the server (its retry then
            # hits the name): hand its id over so the builder is deleted, not left running.
            find = partial(self.h.client.servers.get_by_name, name)
            made = self.h.call("find image builder", find)
            if made is not None:
                raise BuilderFailed(str(made.id), exc) from None
            raise
        # The builder exists from here on: the caller must be able to delete it even if the
        # wait below fails, so its id is known before waiting.
        server_id = str(resp.server.id)
        try:
            self.h.wait("create image builder", resp)
            for action in resp.next_actions or []:
                self.h.wait("start image builder", action)
            srv = self._server(server_id)
        except CloudError as exc:
            raise BuilderFailed(server_id, exc) from None
        net = srv.public_net
        return Builder(server_id, name, net.ipv4.ip if net and net.ipv4 else "")

    def shutdown(self, server_id: str, timeout: float) -> None:
        """ACPI shutdown, waiting until the server is off; a hard power-off after `timeout`
        (Hetzner's shutdown action ends when the signal is sent, not when the OS is down)."""
        srv = self._server(server_id)
        if srv.status != "off":
            ops.act(self.h, f"shut down {srv.name}", srv.shutdown)
        deadline = self.poll.deadline(timeout)
        while srv.status != "off":
            if self.poll.expired(deadline):
                ops.power_off(self.h, srv)
                return
            self.poll.pause()
            srv = self._server(server_id)

    def snapshot(self, server_id: str, description: str, labels: dict[str, str]) -> str:
        return ops.snapshot(self.h, self._server(server_id), description, labels)

    def delete_server(self, server_id: str) -> bool:
        """Delete and wait; False when it was already gone."""
        try:
            srv = self._server(server_id)
        except CloudError as exc:
            if exc.code == "not_found":
                return False
            raise
        ops.act(self.h, f"delete {srv.name}", srv.delete)
        return True

    def list(self, selector: Selector) -> list[GoldenRef]:
        newest = partial(self.h.client.images.get_all, type=["snapshot"],
                         sort=["created:desc", "id:desc"])  # fmt: skip
        return [_ref(i) for i in self.h.listed("list golden images", newest, selector)]


class BuilderFailed(CloudError):
    """The builder was created but did not come up; carries its id so it can be deleted."""

    def __init__(self, server_id: str, cause: CloudError) -> None:
        super().__init__(cause.one_line(), code=cause.code)
        self.server_id = server_id
