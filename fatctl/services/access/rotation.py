"""Operator key rotation across the fleet: add the new key, prove it logs in, remove the old.

Resumable by construction: every run re-derives each box's position from what works. A box
that already accepts the new key only gets its block made exact; a box that still accepts only
the old key goes through add -> verify -> remove. A box that is down is reported and left for
the next run; the old key stays valid in the database until every box has been rotated.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fatctl.domain import KeyRole
from fatctl.errors import FatctlError
from fatctl.remote.target import Target, fingerprint
from fatctl.services.access.authorized_keys import push_authorized_keys
from fatctl.services.common.audit import audit_change
from fatctl.services.common.targets import select_targets
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.remote.runner import Pool


@dataclass(frozen=True)
class HostRotation:
    """How one box fared: `rotated`, `already` (done by an earlier run) or `failed`."""

    agent: str
    host: str
    status: str
    error: str = ""


@dataclass(frozen=True)
class KeySets:
    """The operator keys wanted on boxes during (`both`) and after (`final`) the rotation."""

    final: tuple[str, ...]
    both: tuple[str, ...]
    drop: tuple[str, ...]  # keys to remove even outside the block, once the new one works
    new: str = ""
    old: str = ""


def _rotate_host(pool: Pool, target: Target, new_key_file: str, keys: KeySets) -> str:
    """Bring one box to the final key set; raises a FatctlError when it cannot be done now."""
    user = target.user
    new_target = target.with_key_file(new_key_file)
    try:
        push_authorized_keys(pool, new_target, user=user, keys=keys.final, drop=keys.drop)
        return "already"
    except FatctlError:
        pool.drop(new_target)  # the new key does not work there yet: take the old road
    push_authorized_keys(pool, target, user=user, keys=keys.both)
    pool.drop(new_target)
    check = pool.get(new_target).run("true")  # a fresh login with the new key, not a reuse
    if not check.ok:
        raise FatctlError(
            f"{target.label()}: login with the new key ran but exited {check.exit_code}"
        )
    push_authorized_keys(pool, new_target, user=user, keys=keys.final, drop=keys.drop)
    return "rotated"


def _key_sets(engine: Engine, new_line: str, old_line: str, actor: str) -> KeySets:
    """Record the new key as an operator key; work out the key sets from the database."""
    from fatctl.services.agents import keys as key_service
    from fatctl.state import repo

    new_fp, old_fp = fingerprint(new_line), fingerprint(old_line)
    with session_scope(engine) as session:
        active = repo.active_keys(session, agent=None, role=KeyRole.OPERATOR.value)
    if all(k.fingerprint != new_fp for k in active):
        key_service.add_key(
            engine,
            role=KeyRole.OPERATOR,
            public_key=new_line,
            label="rotated-in",
            agent=None,
            actor=actor,
        )
    others = [k.public_key for k in active if k.fingerprint not in (new_fp, old_fp)]
    final = (*others, new_line)
    return KeySets(final, (*final, old_line), (old_line,), new=new_line, old=old_line)


def rotate_operator(
    engine: Engine,
    settings: Settings,
    pool: Pool,
    *,
    new_key_file: str,
    actor: str,
    parallel: int = 10,
    on_host: Callable[[HostRotation], None] | None = None,
) -> list[HostRotation]:
    """Rotate every reachable box from `settings.operator_key_file` to `new_key_file`."""
    from fatctl.remote.runner import load_public_key

    old_file = settings.require("operator_key_file")
    new_line, old_line = load_public_key(new_key_file), load_public_key(old_file)
    keys = _key_sets(engine, new_line, old_line, actor)
    targets = select_targets(engine, settings, all_agents=True, key_file=old_file)

    def one(target: Target) -> HostRotation:
        outcome = _rotate_and_record(engine, pool, target, new_key_file, keys, actor)
        if on_host:
            on_host(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as ex:
        outcomes = list(ex.map(one, targets))
    if all(o.status != "failed" for o in outcomes):
        _retire_old_key(engine, old_line, actor)
    return outcomes


def _rotate_and_record(
    engine: Engine, pool: Pool, target: Target, new_key_file: str, keys: KeySets, actor: str
) -> HostRotation:
    """Rotate one box and audit how it went; never raises for a box that cannot be reached."""
    try:
        status = _rotate_host(pool, target, new_key_file, keys)
        outcome = HostRotation(target.name, target.host, status)
    except FatctlError as exc:
        outcome = HostRotation(target.name, target.host, "failed", exc.one_line())
    detail = {"new": fingerprint(keys.new), "old": fingerprint(keys.old), "status": outcome.status}
    if outcome.error:
        detail["error"] = outcome.error
    result = "failed" if outcome.status == "failed" else "ok"
    audit_change(engine, actor, "keys.rotate-operator.host", target.name, result, detail)
    return outcome


def _retire_old_key(engine: Engine, old_line: str, actor: str) -> None:
    """Every box is rotated: the old key is revoked in the database too (kept for the record)."""
    from fatctl.services.agents import keys as key_service
    from fatctl.state import repo

    old_fp = fingerprint(old_line)
    with session_scope(engine) as session:
        active = repo.active_keys(session, agent=None, role=KeyRole.OPERATOR.value)
    if any(k.fingerprint == old_fp for k in active):
        key_service.revoke_key(engine, fingerprint=old_fp, agent=None, actor=actor)
    audit_change(engine, actor, "keys.rotate-operator.done", "fleet", "ok", {"old": old_fp})
