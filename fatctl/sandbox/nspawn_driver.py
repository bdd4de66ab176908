"""`NspawnBoxDriver`: the Hetzner emulator's servers as real nspawn-booted Debian boxes.

Each server gets `<state_dir>/box-<id>/` (disk layer, NoCloud seed, record, console log) and a
network namespace on the sandbox bridge with the addresses the emulator allocated. Every disk
starts with the sandbox's HTTPS root where Caddy keeps its local CA (`<state_dir>/ca`, made by
`ensure_ca`: see `fatctl.sandbox.box_ca`). Boxes boot
from the golden image (`fatctl.sandbox.image`). The emulator calls the driver from several action
workers at once: calls for one server are serialised, different servers proceed in parallel.

For `python -m fatctl.sandbox.hetzner --driver fatctl.sandbox.nspawn_driver:from_env`:
  FATCTL_BOX_STATE_DIR  where boxes live (required)
  FATCTL_BOX_IMAGE      a golden rootfs; else the image for FATCTL_BOX_RUNTIME, FATCTL_BOX_NODE
                        and FATCTL_BOX_EXTRA_RUNTIMES (comma list), defaults as in
                        `fatctl.sandbox.image`, built on first use if not cached
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from fatctl.errors import ConfigError
from fatctl.sandbox import netns
from fatctl.sandbox.box import Box, BoxError, BoxRecord
from fatctl.sandbox.box_ca import seed_box

ImageSource = Path | Callable[[], Path]


class NspawnBoxDriver:
    """Implements `fatctl.sandbox.driver.BoxDriver` with `Box`es under `state_dir`."""

    def __init__(self, state_dir: Path, image: ImageSource) -> None:
        self.state_dir = Path(state_dir)
        self._image = image
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self._boxes: dict[int, Box] = {}

    @property
    def ca_dir(self) -> Path:
        """The sandbox's HTTPS root for its boxes (`sandbox.box_ca`), beside the boxes."""
        return self.state_dir / "ca"

    def image(self) -> Path:
        """The golden rootfs; built on first use when given as a callable."""
        if callable(self._image):
            self._image = self._image()
        return self._image

    def _lock(self, server_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(server_id, threading.Lock())

    def box_dir(self, server_id: int) -> Path:
        return self.state_dir / f"box-{server_id}"

    def box(self, server_id: int) -> Box:
        """The box of a server; BoxError if the driver never created it."""
        with self._guard:
            box = self._boxes.get(server_id)
            if box is None:
                box = Box(self.box_dir(server_id))
                if not box.paths.record.exists():
                    raise BoxError(f"no sandbox box for server {server_id}")
                self._boxes[server_id] = box
            return box

    def create(self, server_id: int, name: str, ipv4: str, ipv6: str, user_data: str) -> None:
        with self._lock(server_id):
            box_dir = self.box_dir(server_id)
            if box_dir.exists():  # a rebuild after a failed delete: start clean
                Box(box_dir).delete()
            record = BoxRecord(
                server_id, name, ipv4, ipv6, str(self.image()), f"fatbox-{server_id}"
            )
            self.state_dir.mkdir(parents=True, exist_ok=True)
            # A new server starts on a fresh link: a namespace of the same name left by a killed
            # run is unplugged from the bridge first, so two boxes never share an address.
            netns.remove_box_net(netns.box_net(server_id, ipv4, ipv6))
            box = Box.create(box_dir, record, user_data)
            # The sandbox's HTTPS root in the new disk, before Caddy's first start: the host's
            # fleet prober verifies every box by it, without SSH (sandbox.box_ca).
            seed_box(box.paths.upper, self.image(), self.ca_dir)
            with self._guard:
                self._boxes[server_id] = box
            try:
                box.start()
            except Exception:
                self._forget(server_id).delete()
                raise

    def power_on(self, server_id: int) -> None:
        with self._lock(server_id):
            self.box(server_id).start()

    def power_off(self, server_id: int) -> None:
        with self._lock(server_id):
            self.box(server_id).power_off()

    def reboot(self, server_id: int) -> None:
        with self._lock(server_id):
            self.box(server_id).reboot()

    def delete(self, server_id: int) -> None:
        with self._lock(server_id):
            if self.box_dir(server_id).exists():
                self._forget(server_id).delete()

    def _forget(self, server_id: int) -> Box:
        with self._guard:
            return self._boxes.pop(server_id, None) or Box(self.box_dir(server_id))

    def server_ids(self) -> list[int]:
        """Servers with a box on disk (running or not)."""
        ids = (p.name.removeprefix("box-") for p in self.state_dir.glob("box-*"))
        return sorted(int(i) for i in ids if i.isdigit())

    def delete_all(self) -> None:
        """Tear down every box this driver's state dir holds (sandbox down, test teardown)."""
        errors = []
        for server_id in self.server_ids():
            try:
                self.delete(server_id)
            except Exception as exc:  # keep going: one stuck box must not leak the others
                errors.append(f"{server_id}: {exc}")
        if errors:
            raise BoxError("could not delete boxes " + "; ".join(errors))


def from_env() -> NspawnBoxDriver:
    """The driver factory for the emulator's `--driver` option (configured by environment)."""
    state = os.environ.get("FATCTL_BOX_STATE_DIR")
    if not state:
        raise ConfigError("FATCTL_BOX_STATE_DIR is not set (where sandbox boxes live)")
    image = os.environ.get("FATCTL_BOX_IMAGE")
    if image:
        return NspawnBoxDriver(Path(state), Path(image))

    def build() -> Path:
        from fatctl.sandbox import image as img

        extra = os.environ.get("FATCTL_BOX_EXTRA_RUNTIMES")
        return img.ensure_golden_image(
            os.environ.get("FATCTL_BOX_RUNTIME", img.DEFAULT_RUNTIME),
            os.environ.get("FATCTL_BOX_NODE", img.DEFAULT_NODE),
            extra_runtime_versions=img.DEFAULT_EXTRA_RUNTIMES
            if extra is None
            else [v for v in extra.split(",") if v],
        )

    return NspawnBoxDriver(Path(state), build)
