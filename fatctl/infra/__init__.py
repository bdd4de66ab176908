"""Infra engines behind one protocol (`fatctl.infra.engine.InfraEngine`).

`make_engine` is the one place that picks an engine; SDKs are imported only when it is called,
so importing this package stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fatctl.errors import BadInput, ConfigError
from fatctl.infra.capacity import parse_fallbacks
from fatctl.infra.projects import ProjectRouter, recorded_projects
from fatctl.pacing.timing import Timing

if TYPE_CHECKING:
    from fatctl.config import Settings
    from fatctl.domain import ChangeSink
    from fatctl.infra.engine import InfraEngine
    from fatctl.pacing.timing import Timing

ENGINES = ("auto", "pulumi", "hcloud")


def make_engine(
    settings: Settings,
    name: str | None = None,
    *,
    timing: Timing | None = None,
    on_change: ChangeSink | None = None,
) -> InfraEngine:
    """`pulumi`, `hcloud`, or `auto` (Pulumi when its CLI is installed, else hcloud); over
    several Hetzner projects, a router sending each agent's calls to its own project."""
    fallbacks_engine(settings, name)  # the router builds its engines late: refuse now
    if settings.several_projects and settings.hcloud_project is None:

        def build(one: Settings) -> InfraEngine:
            return make_engine(one, name, timing=timing, on_change=on_change)

        return ProjectRouter(settings, build, recorded_projects(settings))  # type: ignore[return-value]
    choice = (name or settings.engine or "auto").lower()
    if timing is None:
        timing = Timing.of(settings)
    if choice not in ENGINES:
        raise BadInput(f"unknown engine {choice!r}: use one of {', '.join(ENGINES)}")
    if choice == "auto":
        from fatctl.infra.pulumi.engine import find_cli

        choice = "pulumi" if find_cli() else "hcloud"
    if choice == "pulumi":
        from fatctl.infra.pulumi.engine import PulumiEngine

        return PulumiEngine(settings, timing=timing, on_change=on_change)
    from fatctl.infra.hcloud.engine import HcloudEngine

    return HcloudEngine(settings, timing=timing, on_change=on_change)


def fallbacks_engine(settings: Settings, name: str | None = None) -> None:
    """`defaults.fallbacks` is checked, and refused with the Pulumi engine: its program
    creates the server where the spec says and never tries an alternative, so the setting
    would be silently ignored (ConfigError: exit 2, one line)."""
    if not parse_fallbacks(settings.fallbacks):
        return
    choice = (name or settings.engine or "auto").lower()
    if choice == "auto":
        from fatctl.infra.pulumi.engine import find_cli

        choice = "pulumi" if find_cli() else "hcloud"
    if choice == "pulumi":
        raise ConfigError(
            "defaults.fallbacks (FATCTL_FALLBACKS) needs the hcloud engine: the pulumi engine "
            'never falls back; unset it or set engine = "hcloud"'
        )
