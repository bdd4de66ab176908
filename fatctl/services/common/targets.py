"""Which boxes a command reaches: SSH targets (host, port, user, pinned key) from the database.

Every feature that talks to boxes selects them here: by name, `--all` or `--label k=v` on the
agent columns, skipping agents that have no box (requested, suspended, archived, destroying,
destroyed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fatctl.domain import LABEL_COLUMNS, AgentState
from fatctl.errors import BadInput, ConfigError, NotFound, RemoteError
from fatctl.remote.target import Target
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.state.models import Agent

# Not targets of `--all`/`--label`: no box (requested, suspended, archived: a suspended agent
# keeps its IPs, with no server behind them) or one on its way out. Asking them would only add
# unreachable failures that can trip a rollout's --max-failures.
_UNREACHABLE_STATES = {AgentState.REQUESTED, AgentState.SUSPENDED, AgentState.ARCHIVED,
                       AgentState.DESTROYING, AgentState.DESTROYED}  # fmt: skip


def target_for(
    session: Session, agent: Agent, settings: Settings, *, key_file: str | None = None
) -> Target:
    """How to reach `agent` as the operator, pinned to the host keys fatctl generated for it."""
    from fatctl.state import repo

    if not agent.ipv4:
        raise NotFound(f"agent {agent.name} has no IPv4 address yet (state {agent.state})")
    pinned = tuple(hk.public_key for hk in repo.host_keys(session, agent))
    if not pinned:
        raise RemoteError(f"agent {agent.name} has no pinned host key: refusing to connect")
    key = key_file if key_file is not None else settings.operator_key_file
    return Target(
        name=agent.name,
        host=agent.ipv4,
        port=_port(settings.ssh_port, "ssh_port"),
        user=settings.operator_user,
        host_keys=pinned,
        key_file=key or None,
        use_agent=not key,
        jump=jump_target(settings, key or None),
    )


def check_ssh_settings(settings: Settings) -> None:
    """Refuse a malformed SSH route (port, bastion) now: a flow that will need it asks before
    it writes anything, not when it first connects."""
    _port(settings.ssh_port, "ssh_port")
    jump_target(settings, None)


def _port(text: str, what: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"{what} must be a TCP port number, not {text!r}")
    return port


def jump_target(settings: Settings, key_file: str | None) -> Target | None:
    """The bastion from `ssh_jump` (user@host[:port]), pinned to `ssh_jump_host_key`."""
    if not settings.ssh_jump:
        return None
    user, sep, hostport = settings.ssh_jump.rpartition("@")
    host, _, port = hostport.partition(":")
    if not sep or not user or not host:
        raise ConfigError(f"ssh_jump must look like user@host[:port], not {settings.ssh_jump!r}")
    if not settings.ssh_jump_host_key:
        raise ConfigError(
            "ssh_jump is set but ssh_jump_host_key is not: the bastion must be pinned"
        )
    return Target(
        name="bastion",
        host=host,
        port=_port(port or "22", "the ssh_jump port"),
        user=user,
        host_keys=(settings.ssh_jump_host_key,),
        key_file=key_file,
        use_agent=not key_file,
    )


def parse_label(label: str) -> tuple[str, str]:
    key, sep, value = label.partition("=")
    if not sep or key not in LABEL_COLUMNS:
        raise BadInput(f"--label wants k=v with k one of {', '.join(LABEL_COLUMNS)}: {label!r}")
    return key, value


def select_agents(session: Session, names: Sequence[str], label: str | None) -> list[Agent]:
    """The agents named (all when none is), every name required to exist, then narrowed to
    `label` (k=v on an agent column). The one selection rule of every fleet command."""
    from fatctl.state import repo

    selector = parse_label(label) if label is not None else None
    agents = repo.list_agents(session, names=list(names))
    missing = set(names) - {a.name for a in agents}
    if missing:  # a name the operator typed, like a bad option: refused as bad input
        raise BadInput(f"no agent named {', '.join(sorted(missing))}")
    if selector:
        agents = [a for a in agents if str(getattr(a, selector[0])) == selector[1]]
    return list(agents)


def select_targets(
    engine: Engine,
    settings: Settings,
    *,
    names: Sequence[str] = (),
    all_agents: bool = False,
    label: str | None = None,
    key_file: str | None = None,
) -> list[Target]:
    """Targets for `--all`, `--agents a,b` or `--label k=v` (exactly one of them)."""

    if sum((bool(names), all_agents, label is not None)) != 1:
        raise BadInput("choose exactly one of --all, --agents a,b or --label k=v")
    with session_scope(engine) as session:
        agents = select_agents(session, names, label)
        if not names:
            agents = [a for a in agents if a.ipv4 and a.state not in _UNREACHABLE_STATES]
        return [target_for(session, a, settings, key_file=key_file) for a in agents]


def agent_target(engine: Engine, settings: Settings, name: str) -> Target:
    from fatctl.state import repo

    with session_scope(engine) as session:
        return target_for(session, repo.get_agent(session, name), settings)
