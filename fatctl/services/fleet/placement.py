"""Which Hetzner project a new agent goes to, and where its box finally went.

Hetzner's public API has no endpoint that reports a project's limits (a create past one is
refused with `resource_limit_exceeded`, 403, "Error when exceeding the maximum quantity of a
resource for an account"), so room is counted here: the agents the state database places in
each project against the project's configured `max_servers`. The first project in fatctl.toml's
order with room wins (the top level's first), so older projects fill up before newer ones are
touched and an operator adds a project when the last one nears its cap. A fleet without named
projects never places anything: every agent stays in the one project, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlmodel import col, func, select

from fatctl.domain import AgentState
from fatctl.errors import CloudError
from fatctl.state.models import Agent

if TYPE_CHECKING:
    from fatctl.config import HcloudProject, Settings


def choose_project(projects: Sequence[HcloudProject], counts: Mapping[str, int]) -> str:
    """The first project whose agents are below its `max_servers` (None: no cap of ours)."""
    for project in projects:
        if project.max_servers is None or counts.get(project.name, 0) < project.max_servers:
            return project.name
    full = ", ".join(f"{p.label} {counts.get(p.name, 0)}/{p.max_servers}" for p in projects)
    raise CloudError(
        f"every Hetzner project is full ({full}): raise max_servers where Hetzner's limit "
        "allows, or add an [hcloud.projects.NAME] table",
        code="resource_limit_exceeded",
    )


def agents_per_project(session: Any) -> dict[str, int]:
    """Live agents (anything not destroyed) per project; agents not placed yet count nowhere."""
    query = (
        select(Agent.project, func.count())
        .where(col(Agent.state) != AgentState.DESTROYED.value, col(Agent.project).is_not(None))
        .group_by(Agent.project)
    )
    return {str(project): int(count) for project, count in session.exec(query).all()}


def place(session: Any, agent: Agent, settings: Settings) -> str:
    """The agent's project: the recorded one, else (with several projects) one with room, or
    the only one, recorded on the agent before any cloud call so every later call goes there."""
    if agent.project is not None:
        return agent.project
    several = settings.several_projects
    agent.project = (
        choose_project(settings.hcloud_projects, agents_per_project(session)) if several else ""
    )
    session.add(agent)
    return agent.project


def record_where_it_went(agent: Agent, server_type: str, location: str) -> str:
    """Record the type and location the box got (a capacity fallback may have moved it);
    returns "" when it is where the agent asked, else "type@location (asked type@location)"."""
    if (agent.server_type, agent.location) == (server_type, location) or not server_type:
        return ""
    moved = f"{server_type}@{location} (asked {agent.server_type}@{agent.location})"
    agent.server_type, agent.location = server_type, location
    return moved
