"""Access to boxes over SSH: targets from the database, managed authorized_keys, secret delivery.

The database says which keys are wanted (`fatctl.services.keys`); this module makes the boxes
agree, through the runner, and audits every change. Secret content goes to the box on the
command's stdin and is never part of a command line, a result, an error or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from fatctl.domain import AgentState, KeyRole
from fatctl.errors import BadInput, ConfigError, NotFound, RemoteError
from fatctl.remote.commands import authorized_keys as ak
from fatctl.remote.commands.files import atomic_write
from fatctl.remote.commands.shell import maybe_sudo
from fatctl.remote.target import Target
from fatctl.sensitive import Sensitive

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from fatctl.config import Settings
    from fatctl.remote.runner import Pool, Result
    from fatctl.state.models import Agent, SshKey

_UNREACHABLE_STATES = {AgentState.REQUESTED, AgentState.DESTROYING, AgentState.DESTROYED}
# Agent columns `--label k=v` can select on (the box's Hetzner labels mirror these).
LABEL_COLUMNS = ("state", "location", "server_type", "image", "runtime_version", "engine")


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
    if missing:
        raise NotFound(f"no agent named {', '.join(sorted(missing))}")
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
    from fatctl.state.db import session_scope

    if sum((bool(names), all_agents, label is not None)) != 1:
        raise BadInput("choose exactly one of --all, --agents a,b or --label k=v")
    with session_scope(engine) as session:
        agents = select_agents(session, names, label)
        if not names:
            agents = [a for a in agents if a.ipv4 and a.state not in _UNREACHABLE_STATES]
        return [target_for(session, a, settings, key_file=key_file) for a in agents]


def agent_target(engine: Engine, settings: Settings, name: str) -> Target:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(engine) as session:
        return target_for(session, repo.get_agent(session, name), settings)


def push_authorized_keys(
    pool: Pool, target: Target, *, user: str, keys: Sequence[str], drop: Sequence[str] = ()
) -> Result:
    """Rewrite the managed block of `user`'s authorized_keys on one box; RemoteError on failure."""
    command = maybe_sudo(ak.rewrite_authorized_keys(user, drop), needed=user != target.user)
    result = pool.get(target).run(command, stdin=ak.managed_block(keys).encode())
    result.check(f"authorized_keys update for {user}")
    return result


def _customer_keys(
    engine: Engine, settings: Settings, agent_name: str
) -> tuple[Target, list[SshKey], list[SshKey]]:
    """The agent's target, its active customer keys, and every key fatctl ever had for it."""
    from sqlmodel import col, select

    from fatctl.state import repo
    from fatctl.state.db import session_scope
    from fatctl.state.models import SshKey

    with session_scope(engine) as session:
        agent = repo.get_agent(session, agent_name)
        target = target_for(session, agent, settings)
        known = list(session.exec(select(SshKey).where(col(SshKey.agent_pk) == agent.id)).all())
    active = [k for k in known if k.revoked_at is None and k.role == KeyRole.CUSTOMER.value]
    return target, active, known


def push_customer_keys(
    engine: Engine, settings: Settings, agent_name: str, *, actor: str, pool: Pool | None = None
) -> list[str]:
    """Make the box's customer authorized_keys match the database; returns the fingerprints.

    Keys fatctl ever knew for this agent are removed from outside the block too (cloud-init
    installed the first ones as plain lines), so a revoked key cannot linger; keys the customer
    added by hand are not fatctl's and stay.
    """
    from fatctl.remote.runner import Pool as RunnerPool

    target, active, known = _customer_keys(engine, settings, agent_name)
    own = pool is None
    active_pool = pool or RunnerPool()
    try:
        push_authorized_keys(
            active_pool,
            target,
            user=settings.customer_user,
            keys=[k.public_key for k in active],
            drop=[k.public_key for k in known],
        )
    except RemoteError as exc:
        audit_change(
            engine, actor, "keys.push.customer", agent_name, "failed", {"error": exc.message}
        )
        raise
    finally:
        if own:
            active_pool.close()
    fingerprints = [k.fingerprint for k in active]
    audit_change(engine, actor, "keys.push.customer", agent_name, "ok", {"keys": fingerprints})
    return fingerprints


def audit_change(
    engine: Engine, actor: str, action: str, target: str, result: str, detail: Mapping[str, object]
) -> None:
    """One audit event in its own transaction (per-host outcomes must survive a later failure)."""
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(engine) as session:
        repo.audit(
            session, actor=actor, action=action, target=target, result=result, detail=dict(detail)
        )


def deliver_file(
    pool: Pool,
    target: Target,
    path: str,
    content: Sensitive,
    *,
    mode: int = 0o600,
    owner: str = "root",
    group: str | None = None,
) -> None:
    """Write a secret file on the box atomically (temp + rename), with mode and owner set.

    The content travels on stdin only; any output of the remote command is redacted before
    it can reach an error message.
    """
    if not isinstance(content, Sensitive):
        raise TypeError("deliver_file takes a Sensitive value")  # forces callers to wrap secrets
    command = maybe_sudo(atomic_write(path, mode, owner, group), needed=owner != target.user)
    result = pool.get(target).run(command, stdin=content.reveal().encode())
    result.check(f"writing {path}", secrets=[content])
