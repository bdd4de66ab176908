"""The seam between the sandbox's Hetzner emulator and the machines behind its servers.

The emulator calls a `BoxDriver` when a server is created, powered or deleted. `NullBoxDriver`
keeps the API layer alone (no root needed); the nspawn driver boots a real Debian box per server.
"""

from __future__ import annotations

from typing import Protocol


class BoxDriver(Protocol):
    """What the emulator asks of the machines behind its servers. Calls may block for a while
    (the emulator runs them in its action workers, so the API stays responsive)."""

    def create(self, server_id: int, name: str, ipv4: str, ipv6: str, user_data: str) -> None:
        """Create and boot the machine for a new server, with `user_data` as its NoCloud seed."""

    def power_on(self, server_id: int) -> None: ...

    def power_off(self, server_id: int) -> None: ...

    def reboot(self, server_id: int) -> None: ...

    def delete(self, server_id: int) -> None:
        """Stop the machine and remove everything it left on the host."""


class NullBoxDriver:
    """API-only sandbox: servers exist in the emulator's state and nowhere else."""

    def create(self, server_id: int, name: str, ipv4: str, ipv6: str, user_data: str) -> None:
        return None

    def power_on(self, server_id: int) -> None:
        return None

    def power_off(self, server_id: int) -> None:
        return None

    def reboot(self, server_id: int) -> None:
        return None

    def delete(self, server_id: int) -> None:
        return None
