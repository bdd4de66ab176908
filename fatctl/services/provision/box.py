"""Provisioning steps on the box, over SSH with the pinned host key: reach it, deliver the
secrets (0600, on stdin, never in user-data), wait for cloud-init, restore a backup before the
gateway's first start when asked (the environment held back until then), and gate on health.

The health gate runs the box's own `fat-health --json`, then checks HTTPS on `<agent>.<domain>`
(retried until its deadline: Caddy's certificate may come some seconds later): with real DNS
through the name; in the sandbox (no public DNS, Caddy's internal CA) through the
box's address with the name as SNI/Host, trusting the CA root read from the box over SSH.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloud_init import layout as L
from fatctl.clock import fixed
from fatctl.errors import FatctlError, RemoteError
from fatctl.remote.commands.converge import ConvergeLayout
from fatctl.remote.commands.shell import maybe_sudo
from fatctl.remote.target import Target
from fatctl.services.agents.gateway_env import missing_model_key
from fatctl.services.backup.on_box import BackupFailed, list_backups, restore_backup
from fatctl.services.common.delivery import deliver_file
from fatctl.services.common.health import wait_healthy
from fatctl.services.common.https_probe import wait_for_https
from fatctl.services.common.secret_names import R2_CREDENTIALS_SECRET
from fatctl.services.common.steps import LATEST_BACKUP
from fatctl.services.common.targets import target_for
from fatctl.services.serving.push import sync_box, wanted_state
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.services.provision.flow import Flow

CADDY_ROOT_CA = "/var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt"


class BoxNotHealthy(FatctlError):
    exit_code = 1


def _pool(flow: Flow) -> Pool:
    from fatctl.remote.runner import Pool

    if flow.box.pool is None:
        flow.box.pool = Pool()
    return flow.box.pool


def close_pool(flow: Flow) -> None:
    pool, flow.box.pool = flow.box.pool, None
    if pool is not None:
        pool.close()


def _target(flow: Flow) -> Target:
    from fatctl.state import repo

    with session_scope(flow.db) as session:
        return target_for(session, repo.get_agent(session, flow.name), flow.settings)


def _box_target(flow: Flow) -> Target:
    """The target `wait_ssh` reached, or a fresh one when that step ran in an earlier run."""
    return flow.box.target or _target(flow)


def _sudo(target: Target, command: str) -> str:
    return maybe_sudo(command, needed=target.user != "root")


def wait_ssh(flow: Flow) -> dict[str, object]:
    """Poll until sshd answers with the pinned host key and lets the operator in."""
    target = _target(flow)
    pool = _pool(flow)
    last = [""]

    def probe() -> bool | None:
        try:
            pool.get(target)
            return True
        except RemoteError as exc:
            last[0] = exc.one_line()
            pool.drop(target)
            return None

    try:
        flow.opts.backoff.wait_for(f"SSH on {target.label()}", probe)
    except FatctlError as exc:
        raise RemoteError(f"{exc.one_line()} (last: {last[0]})") from None
    flow.box.target = target
    return {"host": target.host, "user": target.user}


def deliver_secrets(flow: Flow) -> dict[str, object]:
    """The gateway token and, when R2 is configured, the agent's prefix-scoped credentials.
    Before a restore the gateway's environment is held back (the `start` step delivers it):
    its arrival starts the gateway, which must not run on the empty state first."""
    target, pool = _box_target(flow), _pool(flow)
    delivered = []
    r2 = _r2_env(flow)
    if r2 is not None:  # first: the data mount must be ready before the gateway starts
        deliver_file(pool, target, L.R2_ENV, r2)  # type: ignore[arg-type]
        delivered.append(L.R2_ENV)
    held = flow.opts.restore_from is not None
    out = _sync(flow, target, pool, delivered, hold_env=held)
    out["r2"] = "delivered" if r2 else "not configured"
    if held:
        out["gateway_env"] = "held until the restore is done"
    return out


def _sync(
    flow: Flow, target: Target, pool: Pool, delivered: list[str], *, hold_env: bool
) -> dict[str, object]:
    """Bring the box's files (and, unless held, gateway.env) to the spec as it is now."""
    from fatctl.state import repo

    with session_scope(flow.db) as session:
        agent = repo.get_agent(session, flow.name)
        # The spec as it is now: a channel or sender added since user-data was rendered lands too.
        wanted = wanted_state(session, flow.ring, flow.settings, agent,
                              sandbox=flow.opts.sandbox, target=target)  # fmt: skip
        spec = wanted.spec
        missing = missing_model_key(session, agent.id or 0, spec) if spec and spec.model else None
    changed, _ = sync_box(pool, target, wanted, ConvergeLayout(), hold_env=hold_env)
    delivered += [*changed, *(() if hold_env else (L.GATEWAY_ENV,))]
    out: dict[str, object] = {"files": ",".join(delivered) or "none changed"}
    if missing:
        out["model_key"] = f"missing: {missing}"
    return out


def restore_state(flow: Flow) -> dict[str, object]:
    """Put the backup `Options.restore_from` names (or, for "latest", `preferred_backup` of
    the listing) in place as the gateway's state, with the gateway stopped and left stopped
    (the `start` step starts it). A "latest" is resolved once: `Options.chose_restore` hears
    the name before the restore runs, so a caller's rerun restores that one, not whatever the
    listing shows by then."""
    target, pool = _box_target(flow), _pool(flow)
    name = flow.opts.restore_from or ""
    if name == LATEST_BACKUP:
        name = preferred_backup(list_backups(flow.db, pool, target)) or ""
        if not name:
            hint = "--no-restore starts the gateway on an empty state"
            raise BackupFailed(f"agent {flow.name} has no backup to restore", hint=hint)
        if flow.opts.chose_restore is not None:
            flow.opts.chose_restore(name)
    answer = restore_backup(flow.db, flow.ring, pool, target, flow.opts.backoff, name=name,
                            start=False, actor=flow.actor)  # fmt: skip
    return {"restored": name, "preflight": str(answer.get("preflight") or "")}


def preferred_backup(listed: list[dict[str, object]]) -> str | None:
    """Of backups listed newest first, the newest one fatctl or an operator took (`pre-*`,
    `manual`), else the newest: a `scheduled` one may be a timer's copy of a box whose state
    was never put back (a restore that failed), and must not win over the real state."""
    names = [str(b["name"]) for b in listed if b.get("name")]
    taken = [n for n in names if not n.endswith("-scheduled")]
    preferred = taken or names
    return preferred[0] if preferred else None


def start_gateway(flow: Flow) -> dict[str, object]:
    """Deliver the gateway's environment (its path unit starts the gateway on it); a box that
    has it already is left as it is. The `health` step then gates on it."""
    out = _sync(flow, _box_target(flow), _pool(flow), [], hold_env=False)
    return {**out, "gateway": "started"}


def _r2_env(flow: Flow) -> object | None:
    """Stored credentials while fresh, else new ones from the R2 temporary-credentials API."""
    from fatctl.dns.r2_credentials import issue_r2_credentials, needs_rotation
    from fatctl.services.storage.r2_rotation import r2_env, stored_expiry
    from fatctl.state import secret_store

    settings = flow.settings
    if not (settings.r2_endpoint and settings.cloudflare_account_id):
        return None
    agent_pk, agent_id, expiry = stored_expiry(flow.db, flow.name)
    now = flow.opts.clock()  # one reading: the freshness check and the new expiry agree
    with session_scope(flow.db) as session:
        if expiry is not None and not needs_rotation(expiry, now):
            return secret_store.get(
                session, flow.ring, agent_pk=agent_pk, name=R2_CREDENTIALS_SECRET
            )
    creds = issue_r2_credentials(settings, agent_id, clock=fixed(now))
    env = r2_env(creds)
    with session_scope(flow.db) as session:
        secret_store.put(session, flow.ring, agent_pk=agent_pk, name=R2_CREDENTIALS_SECRET,
                         value=env, expires_at=creds.expires_at)  # fmt: skip
    return env


def wait_cloud_init(flow: Flow) -> dict[str, object]:
    """Poll `cloud-init status` until done; an `error` status ends the wait at once."""
    target, pool = _box_target(flow), _pool(flow)

    def probe() -> str | None:
        result = pool.get(target).run("cloud-init status", timeout=60)
        text = result.stdout.strip()
        if "status: error" in text:
            raise BoxNotHealthy(f"cloud-init failed on {flow.name}: {text.splitlines()[-1]}")
        return "done" if "status: done" in text else None

    return {"cloud_init": flow.opts.backoff.wait_for(f"cloud-init on {flow.name}", probe)}


def health_gate(flow: Flow) -> dict[str, object]:
    """`fat-health --json` reports healthy, then HTTPS answers on the agent's name."""

    target, pool = _box_target(flow), _pool(flow)
    report = wait_healthy(pool, target, flow.opts.backoff, BoxNotHealthy)
    https = check_https(flow, target, pool)
    return {"runtime_version": report.get("runtime_version", ""), "https": https}


def check_https(flow: Flow, target: Target, pool: Pool) -> str:
    """HTTPS on the fqdn, retried with the run's backoff until it answers or the deadline
    passes (then one clean line, never a traceback); in the sandbox via the box's IP with the
    fqdn as SNI and Host, trusting Caddy's internal CA read from the box."""

    assert flow.spec is not None
    fqdn, port, backoff = flow.spec.fqdn, flow.opts.https_port, flow.opts.backoff
    if not flow.opts.sandbox:
        return f"HTTP {wait_for_https(fqdn, fqdn, backoff, port=port)}"
    cat = pool.get(target).run(_sudo(target, f"cat {CADDY_ROOT_CA}"), timeout=30)
    if not cat.ok:
        raise BoxNotHealthy(f"cannot read Caddy's internal CA on {flow.name}")
    status = wait_for_https(target.host, fqdn, backoff, ca_pem=cat.stdout, port=port)
    return f"HTTP {status} (sandbox: via {target.host}, Caddy internal CA)"
