"""`fatctl destroy`: a state backup first, then DNS records, then the server and its stack;
primary IPs and the customer's R2 data survive unless asked otherwise. Idempotent and recorded:
a rerun finishes the job.

The backup (kind `pre-destroy`, the gateway stopped for a consistent copy and left stopped) is
taken while the agent is still what it was: a box that cannot be reached fails the destroy
before anything changes, with the hint to pass `--no-backup`, which is audited as a skipped
step. An agent without a box holding state (never past provisioning's secrets, suspended,
archived) has nothing to back up; a rerun of a destroy already under way keeps what it took.
An agent with an unfinished lifecycle op is refused (exit 2), naming the op's command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fatctl.domain import AgentState
from fatctl.errors import FatctlError
from fatctl.services.backup.on_box import take_backup
from fatctl.services.common.audit import audit_change
from fatctl.services.common.leases import DESTROY_TTL_S, agent_lease
from fatctl.services.common.open_ops import refuse_if_open
from fatctl.services.common.steps import Emit, StepLog
from fatctl.services.common.targets import agent_target
from fatctl.services.provision.preflight import destroy_settings
from fatctl.services.storage.data import purge_prefix
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from fatctl.config import Settings
    from fatctl.infra.engine import InfraEngine
    from fatctl.secrets import KeyRing


# The steps a destroy may run, in order (dns without a domain and data without --purge-data
# are left out of a run): what a progress view counts to.
DESTROY_STEPS = ("backup", "dns", "infra", "data", "state")
NO_BACKUP_HINT = "pass --no-backup to destroy without one (the box's state is then lost)"


class BackupFirstFailed(FatctlError):
    """The backup a risky change takes first could not be taken: nothing was changed."""

    exit_code = 1


@dataclass(frozen=True)
class Destroyed:
    agent: str
    state: str
    steps: tuple[dict[str, object], ...]


def destroy(
    db: Engine,
    ring: KeyRing,
    settings: Settings,
    infra: InfraEngine,
    name: str,
    actor: str,
    *,
    release_ips: bool = False,
    purge_data: bool = False,
    backup: bool = True,
    emit: Emit = lambda kind, **fields: None,
) -> Destroyed:
    from fatctl.services.common.specs import build_spec
    from fatctl.services.serving.push import has_box
    from fatctl.state import repo

    # Refused before the agent is `destroying`: a refusal half-way left it there.
    destroy_settings(db, ring, settings, name, purge_data=purge_data)
    log = StepLog(db, name, actor, emit, flow="destroy")
    with lease(db, agent_lease(name), ttl_s=DESTROY_TTL_S):
        with session_scope(db) as session:
            agent = repo.get_agent(session, name)
            if agent.state == AgentState.DESTROYED.value:
                log.note("destroy", "unchanged", "already destroyed")
                return Destroyed(name, agent.state, tuple(log.results))
            # An open op owns resources the agent's row may not name (a move's replacement
            # server and IPs, labelled `op=<id>`, which `destroy` does not see): finishing it
            # first leaves one set, which the destroy then removes whole.
            refuse_if_open(session, name, "destroy")
            # A destroy under way took its backup (or was told not to) before it began.
            begun = agent.state == AgentState.DESTROYING.value
            stateful = has_box(agent)
        if begun:
            log.note("backup", "kept", "the destroy under way began after it")
        elif not stateful:
            log.note("backup", "skipped", "no box holding state")
        elif backup:
            log.run("backup", lambda: _backup(db, settings, name, actor))
        else:
            _skip_backup(db, log, name, actor)
        with session_scope(db) as session:
            agent = repo.get_agent(session, name)
            repo.set_state(session, agent, AgentState.DESTROYING)
            spec = build_spec(session, agent, settings)
        if settings.domain:
            log.run("dns", lambda: _dns(settings, name))
        log.run("infra", lambda: _infra(infra, spec, release_ips))
        if purge_data:
            log.run("data", lambda: _purge(db, ring, settings, name))
        log.run("state", lambda: _forget(db, name, release_ips))
    return Destroyed(name, AgentState.DESTROYED.value, tuple(log.results))


def _backup(db: Engine, settings: Settings, name: str, actor: str) -> dict[str, object]:
    """A consistent backup (the gateway stopped, and kept stopped: the box goes next)."""
    from fatctl.remote.runner import Pool

    try:
        target = agent_target(db, settings, name)
        with Pool() as pool:
            taken = take_backup(db, pool, target, kind="pre-destroy", stop_gateway=True,
                                keep_stopped=True, actor=actor)  # fmt: skip
    except FatctlError as exc:
        raise BackupFirstFailed(f"backup before destroy failed: {exc.one_line()}",
                                hint=NO_BACKUP_HINT) from None  # fmt: skip
    return {"backup": taken.object_key, "size_bytes": taken.size_bytes}


def _skip_backup(db: Engine, log: StepLog, name: str, actor: str) -> None:
    """--no-backup is the operator's choice to lose the box's state: on the record."""
    audit_change(db, actor, "destroy.backup", name, "skipped", {"note": "skipped by --no-backup"})
    log.note("backup", "skipped", "skipped by --no-backup")


def _dns(settings: Settings, name: str) -> dict[str, object]:
    from fatctl.dns.cloudflare_dns import CloudflareDns

    changes = CloudflareDns(settings).delete(name)
    return {"deleted": ", ".join(c.name for c in changes) or "none"}


def _infra(infra: InfraEngine, spec: object, release_ips: bool) -> dict[str, object]:
    infra.destroy(spec, release_ips=release_ips)  # type: ignore[arg-type]
    return {"primary_ips": "released" if release_ips else "kept"}


def _purge(db: Engine, ring: KeyRing, settings: Settings, name: str) -> dict[str, object]:
    """Delete the agent's R2 prefix, with the agent's own prefix-scoped credentials."""

    return {"objects_deleted": purge_prefix(db, ring, settings, name)}


def _forget(db: Engine, name: str, release_ips: bool) -> dict[str, object]:
    from sqlmodel import select

    from fatctl.state import repo
    from fatctl.state.models import DnsRecord

    with session_scope(db) as session:
        agent = repo.get_agent(session, name)
        for row in session.exec(select(DnsRecord).where(DnsRecord.agent_pk == agent.id)).all():
            session.delete(row)
        agent.server_id = agent.firewall_id = ""
        if release_ips:
            agent.primary_ipv4_id = agent.primary_ipv6_id = agent.ipv4 = agent.ipv6 = ""
        agent.last_step = ""
        repo.set_state(session, agent, AgentState.DESTROYED)
    return {"state": AgentState.DESTROYED.value}
