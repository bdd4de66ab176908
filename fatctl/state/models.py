"""SQLModel tables: the state database that always says what exists and why.

Every change here needs an Alembic revision in `migrations/versions/`; `tests/unit/test_migrations`
runs `alembic check` on SQLite and PostgreSQL to prove models and migrations agree.
Secret values are only ever stored as AES-256-GCM ciphertext (see `fatctl.secrets`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from fatctl.clock import wall_clock


def utcnow() -> datetime:
    """Column defaults read the one wall clock (`fatctl.clock`)."""
    return wall_clock()


def _ts(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class Owner(SQLModel, table=True):
    """A customer: one e-mail address, one service plan."""

    __tablename__ = "owners"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    plan: str = Field(max_length=16)  # ServicePlan value
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Agent(SQLModel, table=True):
    """One agent, one box. `state` follows `fatctl.domain.ALLOWED_TRANSITIONS`."""

    __tablename__ = "agents"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=40, unique=True, index=True)
    agent_id: str = Field(max_length=32, unique=True)  # stable id: R2 prefix agents/<id>/
    owner_id: int = Field(foreign_key="owners.id", index=True)
    state: str = Field(max_length=16, index=True)
    server_type: str = Field(max_length=32)
    location: str = Field(max_length=16)
    image: str = Field(max_length=64)
    runtime_version: str = Field(max_length=32)
    engine: str = Field(default="", max_length=16)
    # The Hetzner project the box lives in ([hcloud.projects.NAME]); "" is the top level's,
    # None: not placed yet (counts against no project's max_servers). Every later operation on
    # the agent goes to this project (fatctl.infra.projects).
    project: str | None = Field(default=None, max_length=32, index=True)
    server_id: str = Field(default="", max_length=32)
    ipv4: str = Field(default="", max_length=45)
    ipv6: str = Field(default="", max_length=64)
    primary_ipv4_id: str = Field(default="", max_length=32)
    primary_ipv6_id: str = Field(default="", max_length=32)
    firewall_id: str = Field(default="", max_length=32)
    last_step: str = Field(default="", max_length=32)  # last completed provisioning step
    last_error: str = Field(default="", max_length=500)
    # The model the agent thinks with ("provider/model"); "" takes the plan's default.
    model: str = Field(default="", max_length=200)
    # Only for a BYOK custom OpenAI-compatible provider: where its API lives.
    model_base_url: str = Field(default="", max_length=300)
    # The age recipient ("age1...") the box encrypts state backups to; public, so unsealed.
    # Its identity is sealed in `secrets` (BACKUP_IDENTITY_SECRET). "" = no backups yet.
    backup_recipient: str = Field(default="", max_length=100)
    suspended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # An archived agent's backups and data are purged after this (`archive purge`).
    purge_after: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Channel(SQLModel, table=True):
    """A messaging channel the agent answers on. Its credentials are sealed in `secrets`
    under `channel_secret_name(kind)`; this row only says the channel exists."""

    __tablename__ = "agent_channels"
    __table_args__ = (UniqueConstraint("agent_pk", "kind", name="uq_agent_channel_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int = Field(foreign_key="agents.id", index=True)
    kind: str = Field(max_length=16)  # telegram, slack, whatsapp
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Sender(SQLModel, table=True):
    """Someone allowed to talk to the agent; everyone else never reaches the model."""

    __tablename__ = "agent_senders"
    __table_args__ = (UniqueConstraint("agent_pk", "kind", "value", name="uq_agent_sender"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int = Field(foreign_key="agents.id", index=True)
    kind: str = Field(max_length=16)  # email, telegram, slack, phone
    value: str = Field(max_length=254)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class SshKey(SQLModel, table=True):
    """A public key allowed onto boxes: operator keys fleet-wide, customer keys per agent."""

    __tablename__ = "ssh_keys"
    __table_args__ = (UniqueConstraint("agent_pk", "fingerprint", name="uq_ssh_keys_agent_fp"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int | None = Field(default=None, foreign_key="agents.id", index=True)
    role: str = Field(max_length=16)  # KeyRole value
    label: str = Field(max_length=100)
    public_key: str = Field(max_length=4096)
    fingerprint: str = Field(max_length=128, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class HcloudKeyId(SQLModel, table=True):
    """An SSH key's id in one Hetzner project, recorded when fatctl uploads or adopts it there,
    so a fresh box in that project is created without listing the keys. One row per (key,
    project): a key lives once in each project of the fleet, under a different id in each."""

    __tablename__ = "hcloud_key_ids"
    __table_args__ = (
        UniqueConstraint("fingerprint", "project", name="uq_hcloud_key_ids_fp_project"),
    )

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(max_length=64)  # Hetzner's (MD5, without colons)
    project: str = Field(max_length=32)  # a digest of endpoint + token, never the token
    hcloud_id: str = Field(max_length=32)


class HostKey(SQLModel, table=True):
    """A box's pinned SSH host key, generated before the box existed (private half in secrets)."""

    __tablename__ = "host_keys"
    __table_args__ = (UniqueConstraint("agent_pk", "key_type", name="uq_host_keys_agent_type"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int = Field(foreign_key="agents.id", index=True)
    key_type: str = Field(max_length=32)
    public_key: str = Field(max_length=4096)
    fingerprint: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Secret(SQLModel, table=True):
    """An envelope-encrypted value: a per-record data key wrapped by the master key `key_id`."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("agent_pk", "name", name="uq_secrets_agent_name"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int | None = Field(default=None, foreign_key="agents.id", index=True)
    name: str = Field(max_length=100)
    key_id: str = Field(max_length=16, index=True)
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class DnsRecord(SQLModel, table=True):
    """A Cloudflare record fatctl owns (tagged `fatctl` and `agent:<name>`)."""

    __tablename__ = "dns_records"
    __table_args__ = (UniqueConstraint("name", "record_type", name="uq_dns_records_name_type"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int = Field(foreign_key="agents.id", index=True)
    zone_id: str = Field(max_length=64)
    name: str = Field(max_length=255)
    record_type: str = Field(max_length=8)
    content: str = Field(max_length=64)
    record_id: str = Field(default="", max_length=64)
    proxied: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Rollout(SQLModel, table=True):
    """A fleet change (upgrade, converge, apply); resumable because every host step is recorded."""

    __tablename__ = "rollouts"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    target: str = Field(max_length=64)  # version or config digest
    policy: str = Field(default="{}", max_length=2000)  # RolloutPolicy as JSON
    state: str = Field(max_length=16, index=True)  # running, halted, completed, aborted
    actor: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class RolloutStep(SQLModel, table=True):
    """One host's part in a rollout."""

    __tablename__ = "rollout_steps"
    __table_args__ = (UniqueConstraint("rollout_id", "agent_pk", name="uq_rollout_steps_host"),)

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: int = Field(foreign_key="rollouts.id", index=True)
    agent_pk: int = Field(foreign_key="agents.id", index=True)
    wave: int = Field(default=0)  # 0 = canary, 1.. = batches
    phase: str = Field(max_length=16)  # pending, running, succeeded, failed, rolled_back, ...
    from_version: str = Field(default="", max_length=64)
    to_version: str = Field(default="", max_length=64)
    snapshot_id: str = Field(default="", max_length=32)
    # The state backup taken before this host's step (its R2 object key), for a rollback.
    backup_key: str = Field(default="", max_length=300)
    error: str = Field(default="", max_length=500)
    started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Backup(SQLModel, table=True):
    """A state backup fatctl knows of: an encrypted OpenClaw archive in the agent's R2 prefix
    (`backups/<UTC stamp>-<kind>.tar.gz.age`, its sidecar `.json` the commit marker). R2 is the
    truth; a row caches what fatctl took or saw, and when it last proved the archive opens."""

    __tablename__ = "backups"
    # Keys are below each agent's own prefix: two agents' timers may well name theirs alike.
    __table_args__ = (UniqueConstraint("agent_pk", "object_key", name="uq_backups_agent_object"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int = Field(foreign_key="agents.id", index=True)
    object_key: str = Field(max_length=300)
    kind: str = Field(max_length=24)  # scheduled, manual, pre-<operation>
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    size_bytes: int = Field(default=0, sa_type=BigInteger)
    sha256: str = Field(default="", max_length=64)  # of the ciphertext
    runtime_version: str = Field(default="", max_length=32)  # the OpenClaw that wrote it
    verified_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class LifecycleOp(SQLModel, table=True):
    """A rebuild, move, suspend, resume, archive or purge in progress or done: resumable, since
    `last_step` and the `params` it chose (location, new server, IP ids, backup key) are kept."""

    __tablename__ = "lifecycle_ops"

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int = Field(foreign_key="agents.id", index=True)
    kind: str = Field(max_length=16)
    state: str = Field(max_length=16, index=True)  # running, done, failed
    last_step: str = Field(default="", max_length=32)
    params: str = Field(default="{}", max_length=2000)  # JSON
    actor: str = Field(max_length=100)
    error: str = Field(default="", max_length=500)
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AuditEvent(SQLModel, table=True):
    """Who did what to which object, when, and how it ended. Never contains secret values."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    actor: str = Field(max_length=100)
    action: str = Field(max_length=64, index=True)
    target: str = Field(max_length=255, index=True)
    result: str = Field(max_length=16)  # ok, failed, refused
    detail: str = Field(default="", max_length=2000)


class Lease(SQLModel, table=True):
    """A named, expiring lock, so two runs on the same agent (or rollout) cannot race."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    acquired_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())


class GoldenImage(SQLModel, table=True):
    """A golden Hetzner snapshot built by `fatctl image build`: a row per build, failed builds
    included (state `failed` with the error), so the history says what was tried and when."""

    __tablename__ = "golden_images"

    id: int | None = Field(default=None, primary_key=True)
    runtime_version: str = Field(max_length=32, index=True)
    node_version: str = Field(max_length=32)
    base_image: str = Field(max_length=64)  # the stock image the builder started from
    architecture: str = Field(max_length=8)  # x86, arm
    builder: str = Field(max_length=64)  # the builder server's name
    image_id: str = Field(default="", max_length=32)  # Hetzner's id, once the snapshot exists
    # Snapshots live in one Hetzner project and boot servers only there ("" the top level's,
    # where `fatctl image build` builds); an agent placed elsewhere boots the stock image.
    project: str = Field(default="", max_length=32)
    state: str = Field(max_length=16, index=True)  # building, available, failed
    actor: str = Field(max_length=100)
    error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ApiToken(SQLModel, table=True):
    """A bearer token of `fatctl serve`'s API. Only its SHA-256 is kept: the token is 256 random
    bits, so a fast hash is as good as a slow one, and it is shown once, at `tokens create`."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    token_sha256: str = Field(max_length=64, unique=True, index=True)
    scopes: str = Field(max_length=200)  # space-separated, e.g. "agents:read agents:write"
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class IdempotencyKey(SQLModel, table=True):
    """An `Idempotency-Key` a token used on a create: the request's fingerprint, and the answer
    once there is one, so a retry gets the same answer and starts nothing. Keys are hashed
    (they are the client's, and may be guessable); one token's keys never match another's."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("token_id", "key_sha256", name="uq_idempotency_token_key"),)

    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="api_tokens.id", index=True)
    key_sha256: str = Field(max_length=64)
    request_sha256: str = Field(max_length=64)
    status_code: int | None = Field(default=None)  # None while the first request runs
    response: str = Field(default="", max_length=2000)  # JSON
    agent: str = Field(default="", max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ProbeResult(SQLModel, table=True):
    """One probe of an agent's box by the fleet sweep (`fatctl.monitoring.sweep`): the HTTPS
    `/readyz` answer, or for a box that failed it, what SSH `fat-health` said. The writer keeps
    only the newest few per agent; `error` is a short reason, never a secret."""

    __tablename__ = "probe_results"
    __table_args__ = (Index("ix_probe_results_agent_pk_at", "agent_pk", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int = Field(
        sa_column=Column(Integer, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    )
    at: datetime = Field(sa_column=_ts())
    ok: bool
    via: str = Field(max_length=8)  # https, ssh
    status_code: int | None = Field(default=None)
    latency_ms: float | None = Field(default=None)
    error: str | None = Field(default=None, max_length=200)
    # What fat-health reported of the box when the sweep asked it over SSH (migration 0014):
    # NULL on an HTTPS-only row or when the box could not be asked. `channels` is its channel
    # map as compact JSON.
    disk_free_mb: int | None = Field(default=None)
    mem_available_mb: int | None = Field(default=None)
    gateway_restarts: int | None = Field(default=None)
    gateway_memory_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    gateway_memory_peak_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    channels: str | None = Field(default=None, max_length=300)


class WebhookDelivery(SQLModel, table=True):
    """One event for the platform's webhook (`fatctl.service.webhooks`) and how its delivery
    went: the exact body sent on every attempt (JSON, never a secret; the signature is made per
    attempt and not kept), the attempts so far, when the next is due, and how it ended:
    `delivered_at`, or `dead_at` after the last failed attempt or a 410 (the dead letters)."""

    __tablename__ = "webhook_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True, index=True)
    kind: str = Field(max_length=40)  # agent.ready, agent.degraded, agent.destroyed, ...
    agent: str | None = Field(default=None, max_length=40)
    payload: str  # the request body, JSON text
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    dead_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = Field(default=None, max_length=200)


class RepairAttempt(SQLModel, table=True):
    """One rung of the automatic repair ladder on an agent's box (`fatctl.services.repair`):
    restart, reboot, rebuild, or the page that ends it. `result` is running, ok, failed or
    paged; `detail` a short line, never a secret."""

    __tablename__ = "repair_attempts"
    __table_args__ = (Index("ix_repair_attempts_agent_pk_started_at", "agent_pk", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_pk: int = Field(
        sa_column=Column(Integer, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    )
    rung: str = Field(max_length=16)
    started_at: datetime = Field(sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    result: str = Field(max_length=16)
    detail: str = Field(default="", max_length=300)


class RepairHold(SQLModel, table=True):
    """An agent repair leaves alone: an operator's hold, or the page fatctl set when the
    ladder gave up (`kind` operator or paged), until `fatctl repair release`."""

    __tablename__ = "repair_holds"

    agent_pk: int = Field(
        sa_column=Column(Integer, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    )
    kind: str = Field(max_length=16)
    actor: str = Field(max_length=100)
    reason: str = Field(default="", max_length=300)
    since: datetime = Field(sa_column=_ts())


class WorkerHeartbeat(SQLModel, table=True):
    """A running service process (`fatctl worker`, `fatctl serve`) under its DBOS executor id,
    and when it last beat; `taken_by` is the live worker that claimed it once it went quiet
    (`fatctl.service.reaper`)."""

    __tablename__ = "worker_heartbeats"

    executor_id: str = Field(max_length=100, primary_key=True)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(sa_column=_ts())
    beat_at: datetime = Field(sa_column=_ts())
    taken_by: str | None = Field(default=None, max_length=100)
    taken_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class SharedRateBudget(SQLModel, table=True):
    """One cloud API's rate budget as all service processes share it
    (`fatctl.pacing.shared_budget`): the estimate of the server's bucket (`tokens` at `stamp`,
    UNIX seconds, refilled at `rate` per second, or all at once at `reset_at` for a window of
    `span` seconds), and what it granted and how often a taker had to wait."""

    __tablename__ = "rate_budgets"

    api: str = Field(max_length=100, primary_key=True)
    quota: int | None = None  # the server's limit (requests per bucket or window)
    tokens: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    rate: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    stamp: float = Field(sa_column=Column(Float, nullable=False))
    reset_at: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    span: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    granted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    waits: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
