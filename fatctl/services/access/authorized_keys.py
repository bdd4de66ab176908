"""Managed authorized_keys on the boxes: the database says which keys are wanted
(`fatctl.services.agents.keys`); this makes the boxes agree, through the runner, and audits
every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fatctl.domain import KeyRole
from fatctl.errors import RemoteError
from fatctl.remote.commands import authorized_keys as ak
from fatctl.remote.commands.shell import maybe_sudo
from fatctl.services.common.audit import audit_change
from fatctl.services.common.targets import target_for
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.remote.runner import Pool, Result
    from fatctl.remote.target import Target
    from fatctl.state.models import SshKey


def push_authorized_keys(
    pool: Pool,
    target: Target,
    *,
    user: str,
    keys: Sequence[str],
    drop: Sequence[str] = (),
    create: bool = False,
) -> Result:
    """Rewrite the managed block of `user`'s authorized_keys on one box (adding the user first
    with `create`); RemoteError on failure."""
    rewrite = ak.rewrite_authorized_keys(user, drop, create=create)
    command = maybe_sudo(rewrite, needed=user != target.user)
    result = pool.get(target).run(command, stdin=ak.managed_block(keys).encode())
    result.check(f"authorized_keys update for {user}")
    return result


def _customer_keys(
    engine: Engine, settings: Settings, agent_name: str
) -> tuple[Target, list[SshKey], list[SshKey]]:
    """The agent's target, its active customer keys, and every key fatctl ever had for it."""
    from sqlmodel import col, select

    from fatctl.state import repo
    from fatctl.state.models import SshKey

    with session_scope(engine) as session:
        agent = repo.get_agent(session, agent_name)
        target = target_for(session, agent, settings)
        known = list(session.exec(select(SshKey).where(col(SshKey.agent_pk) == agent.id)).all())
    active = [k for k in known if k.revoked_at is None and k.role == KeyRole.CUSTOMER.value]
    return target, active, known


def preview_customer_keys(
    engine: Engine, settings: Settings, agent_name: str, *, pool: Pool | None = None
) -> tuple[str, str]:
    """(the box's customer authorized_keys now, what `push_customer_keys` would make of it):
    read over SSH, merged by the Python reference of the remote rewrite; nothing is written."""
    from fatctl.remote.runner import Pool as RunnerPool

    target, active, known = _customer_keys(engine, settings, agent_name)
    user = settings.customer_user
    active_pool = pool or RunnerPool()
    try:
        command = maybe_sudo(ak.list_authorized_keys(user), needed=user != target.user)
        result = active_pool.get(target).run(command)
        result.check(f"reading {user}'s authorized_keys")
    finally:
        if pool is None:
            active_pool.close()
    current = result.stdout
    wanted = ak.merge_managed_block(
        current, [k.public_key for k in active], drop=[k.public_key for k in known]
    )
    return current, wanted


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
            create=True,  # a box provisioned without customer keys has no customer user yet
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
