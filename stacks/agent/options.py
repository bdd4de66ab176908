"""Resource options of the agent stack, built by pure functions so tests can pin them.

Why these options: a change to `user_data`, `ssh_keys` or `image` would make Pulumi replace the
server, i.e. wipe a live customer's box. Those changes are applied over SSH instead, and a
replacement that is really wanted goes through `fatctl rebuild` (which keeps the IPs).
"""

from __future__ import annotations

from dataclasses import dataclass

# Engine property names (camelCase), as Pulumi compares them in the diff.
SERVER_IGNORED = ("userData", "sshKeys", "image")


@dataclass(frozen=True)
class StackOptions:
    """Options for one resource, independent of pulumi so they can be asserted as data."""

    ignore_changes: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False

    def as_kwargs(self) -> dict[str, object]:
        return {
            "ignore_changes": list(self.ignore_changes),
            "protect": self.protect,
            "retain_on_delete": self.retain_on_delete,
        }


def server_resource_options(*, allow_destroy: bool = False) -> StackOptions:
    """The server: never replaced for ignored drift; protected unless a destroy was asked for."""
    return StackOptions(ignore_changes=SERVER_IGNORED, protect=not allow_destroy)


def primary_ip_resource_options(
    *, allow_destroy: bool = False, release_ips: bool = False
) -> StackOptions:
    """Primary IPs outlive the server: a destroy keeps them (retained) unless they are released."""
    return StackOptions(
        protect=not allow_destroy,
        retain_on_delete=not release_ips,
    )
