"""The `InfraEngine` protocol: one small interface over an `AgentSpec`, whichever cloud driver
implements it (Pulumi Automation API or the hcloud SDK directly). Engines return `fatctl.domain`
dataclasses only; no SDK type crosses this boundary.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from fatctl.domain import AgentSpec, BoxInfo, Plan


@runtime_checkable
class InfraEngine(Protocol):
    """What provisioning, rebuilds and fleet previews need from a cloud driver."""

    name: str

    def apply(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        """Create or converge the agent's resources; never replaces a live server."""
        ...

    def plan(self, spec: AgentSpec) -> Plan:
        """What `apply` would change, without changing anything."""
        ...

    def status(self, spec_or_name: AgentSpec | str) -> BoxInfo | None:
        """The box as the cloud sees it now, or None when it does not exist."""
        ...

    def destroy(self, spec: AgentSpec, *, release_ips: bool) -> None:
        """Delete the agent's resources (idempotent); primary IPs survive unless released."""
        ...

    def power_on(self, name: str) -> None: ...

    def power_off(self, name: str) -> None: ...

    def reboot(self, name: str) -> None: ...

    def enable_rescue(self, name: str) -> None: ...

    def snapshot(self, name: str, description: str, labels: dict[str, str]) -> str:
        """Snapshot the server's disk; returns the image id."""
        ...

    def rebuild(self, spec: AgentSpec, image: str, *, user_data: str = "") -> BoxInfo:
        """Reinstall the server from `image`, keeping the server and its primary IPs."""
        ...

    def change_type(self, name: str, server_type: str) -> BoxInfo:
        """Resize (power off, change type keeping the disk, power on)."""
        ...
