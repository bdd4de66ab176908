"""Hetzner label selectors as data: the text a listing asks with, and the check that each
object it got back carries those labels.

An answer is only as good as whatever gives it (Hetzner, a proxy in between, an emulator): one
that ignored the selector would hand fatctl somebody else's server to bind, resize or delete.
So listings go through a `Selector`, and `kept` drops every object that does not match it
before anything can act on it. Pure: no SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from fatctl.domain import managed_labels

T = TypeVar("T")


@dataclass(frozen=True)
class Selector:
    """`k=v` terms, `k` (present, any value) terms and `k in (a,b)` terms, all required."""

    equal: tuple[tuple[str, str], ...] = ()
    present: tuple[str, ...] = ()
    among: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __str__(self) -> str:
        terms = [f"{k}={v}" for k, v in self.equal] + list(self.present)
        terms += [f"{k} in ({','.join(values)})" for k, values in self.among]
        return ",".join(terms)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        have = dict(labels or {})
        return (
            all(have.get(k) == v for k, v in self.equal)
            and all(k in have for k in self.present)
            and all(have.get(k) in values for k, values in self.among)
        )

    def within(self, key: str, values: Iterable[str]) -> Selector:
        """This selector, also requiring `key` to be one of `values` (`key in (a,b)`)."""
        return replace(self, among=(*self.among, (key, tuple(values))))

    def kept(self, found: Iterable[T]) -> list[T]:
        """The objects (anything with `.labels`) that really carry the labels asked for."""
        return [x for x in found if self.matches(getattr(x, "labels", None))]


def managed(*present: str, **equal: str) -> Selector:
    """What fatctl made (`managed-by=fatctl`), narrowed by labels `present` and `equal`."""
    return Selector(tuple(managed_labels(**equal).items()), present)
