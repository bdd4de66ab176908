"""Capacity fallback as data: where a box may go when Hetzner has no room where it was asked.

Hetzner answers a server create it cannot place with `resource_unavailable` (412, "The
requested resource is currently unavailable (e.g. not available for order)") or, for the
create itself, `placement_error` (422, "An error during the placement occurred"): both per
the Cloud API's error tables. A sold-out type or location is not the customer's fault, so
instead of failing the signup the engine tries the operator's ordered alternatives
(`defaults.fallbacks = ["cx33@fsn1", "cx23@nbg1"]`, FATCTL_FALLBACKS). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from fatctl.domain import architecture_of
from fatctl.errors import BadInput, ConfigError
from fatctl.validation import location, server_type

CAPACITY_CODES = frozenset({"resource_unavailable", "placement_error"})


@dataclass(frozen=True)
class Placement:
    """A server type in a location."""

    server_type: str
    location: str

    def __str__(self) -> str:
        return f"{self.server_type}@{self.location}"


def parse_fallbacks(text: str) -> tuple[Placement, ...]:
    """`type@location,type@location` (the toml list arrives joined by commas), checked."""
    out: list[Placement] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kind, at, where = item.partition("@")
        try:
            if not at:
                raise BadInput("expected type@location")
            out.append(Placement(server_type(kind.strip()), location(where.strip())))
        except BadInput as exc:
            raise ConfigError(f"defaults.fallbacks entry {item[:40]!r}: {exc}") from None
    return tuple(out)


def candidates(first: Placement, fallbacks: tuple[Placement, ...]) -> list[Placement]:
    """Where to try, in order: the asked-for placement, then each distinct alternative of the
    same architecture (the box's image and golden snapshot are built for one: an x86 agent on
    an ARM type would not boot, so it is no fallback)."""
    out = [first]
    arch = architecture_of(first.server_type)
    for alternative in fallbacks:
        if alternative not in out and architecture_of(alternative.server_type) == arch:
            out.append(alternative)
    return out
