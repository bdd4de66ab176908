"""A fleet over several Hetzner projects, behind the one `InfraEngine` protocol.

Hetzner's limits (servers and primary IPs per project, 3600 requests an hour per project) make
a fleet past a few hundred agents span projects: `[hcloud.projects.NAME]` in fatctl.toml, each
with its own token and rate budget (fatctl.hcloud_projects). `ProjectRouter` holds one
engine per project, built on first use from the settings for that project, and sends every
call about an agent to the project its state record names (`agents.project`, written when
provisioning placed it: fatctl.services.fleet.placement). Flows that need one project's own
abilities (key ids, fresh creates, the fleet-wide listing) take `engine_in`/`by_project`.

A config without projects never builds a router: `make_engine` returns the plain engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fatctl.errors import NotFound
from fatctl.state.fastread import agent_projects

if TYPE_CHECKING:
    from fatctl.config import Settings
    from fatctl.domain import AgentSpec, BoxInfo, Plan
    from fatctl.infra.engine import InfraEngine


class ProjectRouter:
    """`InfraEngine` over the fleet's projects: each agent's calls go to its recorded one."""

    capabilities: frozenset[Any] = frozenset()  # the per-project engines declare theirs

    def __init__(
        self,
        settings: Settings,
        build: Callable[[Settings], InfraEngine],
        project_of: Callable[[str], str | None],
    ) -> None:
        self.settings = settings
        self._build = build
        self._project_of = project_of
        self._engines: dict[str, InfraEngine] = {}

    @property
    def name(self) -> str:
        return self.engine_in(self.projects[0]).name

    @property
    def projects(self) -> list[str]:
        return [p.name for p in self.settings.hcloud_projects]

    def engine_in(self, project: str) -> InfraEngine:
        """The engine of one project (its own token, endpoint and rate budget)."""
        if project not in self._engines:
            self._engines[project] = self._build(self.settings.for_project(project))
        return self._engines[project]

    def project_of(self, name: str) -> str:
        """The project the agent's record names; an agent fatctl never placed has none."""
        found = self._project_of(name)
        if found is None:
            raise NotFound(f"agent {name} is not placed in any Hetzner project (never provisioned)")
        self.settings.project(found)  # a project no longer in fatctl.toml: one clear line
        return found

    def of(self, name: str) -> InfraEngine:
        return self.engine_in(self.project_of(name))

    def by_project(self, names: Sequence[str]) -> Iterator[tuple[InfraEngine, list[str]]]:
        """Each project's engine with the given agents that live there (empty lists included,
        so a listing of the whole fleet reads every project)."""
        groups: dict[str, list[str]] = {p: [] for p in self.projects}
        for name in names:
            groups.setdefault(self.project_of(name), []).append(name)
        for project, members in groups.items():
            yield self.engine_in(project), members

    def hcloud_client(self) -> Any:
        raise NotFound("several Hetzner projects: ask for one agent's project (engine_in)")

    def apply(self, spec: AgentSpec, *, user_data: str = "") -> BoxInfo:
        return self.of(spec.name).apply(spec, user_data=user_data)

    def plan(self, spec: AgentSpec) -> Plan:
        # Not placed yet (a dry run of its provision): every project plans the same creates.
        placed = self._project_of(spec.name) is not None
        return (self.of(spec.name) if placed else self.engine_in(self.projects[0])).plan(spec)

    def status(self, spec_or_name: AgentSpec | str) -> BoxInfo | None:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        if self._project_of(name) is None:
            return None  # never placed, so nothing of it exists in any project
        return self.of(name).status(spec_or_name)

    def destroy(self, spec: AgentSpec, *, release_ips: bool) -> None:
        if self._project_of(spec.name) is None:
            return  # never placed, so nothing of it exists in any project
        self.of(spec.name).destroy(spec, release_ips=release_ips)

    def power_on(self, name: str) -> None:
        self.of(name).power_on(name)

    def power_off(self, name: str) -> None:
        self.of(name).power_off(name)

    def reboot(self, name: str) -> None:
        self.of(name).reboot(name)

    def enable_rescue(self, name: str) -> None:
        self.of(name).enable_rescue(name)

    def snapshot(self, name: str, description: str, labels: dict[str, str]) -> str:
        return self.of(name).snapshot(name, description, labels)

    def rebuild(self, spec: AgentSpec, image: str, *, user_data: str = "") -> BoxInfo:
        return self.of(spec.name).rebuild(spec, image, user_data=user_data)

    def change_type(self, name: str, server_type: str) -> BoxInfo:
        return self.of(name).change_type(name, server_type)


def engine_for_agent(engine: InfraEngine, name: str) -> InfraEngine:
    """The engine that serves one agent: its project's under a router, else `engine` itself."""
    return engine.of(name) if isinstance(engine, ProjectRouter) else engine


def engine_in_project(engine: InfraEngine, project: str) -> InfraEngine:
    """The engine of one project under a router, else `engine` itself (one project)."""
    return engine.engine_in(project) if isinstance(engine, ProjectRouter) else engine


def split_by_project(
    engine: InfraEngine, names: Sequence[str]
) -> list[tuple[InfraEngine, list[str]]]:
    """(engine, agents) per project for fleet-wide reads; one pair without projects."""
    if isinstance(engine, ProjectRouter):
        return list(engine.by_project(names))
    return [(engine, list(names))]


def recorded_projects(settings: Settings) -> Callable[[str], str | None]:
    """Look agents' projects up in the state database: one query for all, read again only for
    an agent not placed when last read (provisioning records the project before its first
    cloud call, so one placed since is found)."""
    cache: dict[str, str] = {}

    def project_of(name: str) -> str | None:
        if name not in cache:
            cache.update(agent_projects(settings.database_url))
        return cache.get(name)

    return project_of
