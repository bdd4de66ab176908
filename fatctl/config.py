"""Settings: environment variables over `fatctl.toml` over built-in defaults.

One immutable `Settings` object is built per CLI invocation and passed down; nothing reads the
environment later. Secrets are wrapped in `Sensitive` the moment they are read.

A few environment reads are deliberately not settings, because they describe the invocation or
the terminal rather than the fleet, and a shared `fatctl.toml` must not set them:
- `NO_COLOR`, `TERM` and `CI` (fatctl.cli.output; `TERM` also for a remote shell's pty): how
  to draw on this terminal, and whether a person can be asked at all.
- `FATCTL_CONTEXT` (fatctl.contexts): which of fatctl.toml's named contexts this run uses.
- `FATCTL_ACTOR` (fatctl.cli.context): who the audit trail names, this person or this CI job.
- `FATCTL_DEBUG`, `FATCTL_LOG_FILE` and click's `_FATCTL_COMPLETE` (fatctl.cli.main): a
  traceback for an unexpected error (also one raised while loading settings), where the log
  of API calls and SSH commands goes, and shell completion, all decided before any command
  runs.
- The sandbox cloud's own processes (fatctl.sandbox: `FATCTL_SANDBOX_DIR`, the box driver's
  `FATCTL_BOX_STATE_DIR`, `FATCTL_BOX_IMAGE`, ...): they are the outside world, not fatctl.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from fatctl import contexts
from fatctl.errors import ConfigError
from fatctl.hcloud_projects import DEFAULT_PROJECT, HcloudProject, hcloud_projects
from fatctl.sensitive import Sensitive


@dataclass(frozen=True)
class Setting:
    """Where one setting comes from: its attribute, env var, toml key, and whether it is secret."""

    attr: str
    env: str
    toml: str
    secret: bool = False
    help: str = ""


# Where the runtime and the rendered files live on a box, for `upgrade`, `converge`, `apply`
# and `reconcile`; unset keeps the layout cloud-init builds (fatctl.remote.commands.upgrade
# BoxLayout, .converge ConvergeLayout). The integration tests point them at a runtime in each
# test host's home directory. The 0/1 ones are ignored unless 0 or 1.
BOX_LAYOUT: tuple[tuple[str, str], ...] = (
    ("root", "where runtime versions are installed"),
    ("install", "install command template ({version}, {root})"),
    ("test_boot", "command proving an installed version starts ({version}, {root})"),
    ("restart", "command restarting the gateway"),
    ("health", "health command (prints fat-health's JSON)"),
    ("started", "command printing the gateway's start time (epoch seconds)"),
    ("lock", "the rollout lock file"),
    ("sudo", "0/1: run the box commands with sudo"),
    ("fs_root", "prefix of every converged file's path"),
    ("converge_state", "where converge keeps its backups"),
    ("daemon_reload", "command reloading systemd after unit changes"),
    ("service", "service command template ({action}, {unit})"),
    ("owners", "0/1: give converged files their rendered owner"),
)

SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "FATCTL_DATABASE_URL", "database_url", help="SQLAlchemy URL"),
    Setting("master_key", "FATCTL_MASTER_KEY", "master_key", True, "base64 of 32 bytes"),
    Setting(
        "previous_master_keys",
        "FATCTL_PREVIOUS_MASTER_KEYS",
        "previous_master_keys",
        True,
        "comma-separated old master keys, for rotation",
    ),
    Setting("hcloud_token", "HCLOUD_TOKEN", "hcloud.token", True),
    Setting("hcloud_endpoint", "HCLOUD_ENDPOINT", "hcloud.endpoint"),
    Setting("cloudflare_api_token", "CLOUDFLARE_API_TOKEN", "cloudflare.api_token", True),
    Setting("cloudflare_base_url", "CLOUDFLARE_BASE_URL", "cloudflare.base_url"),
    Setting("cloudflare_account_id", "CLOUDFLARE_ACCOUNT_ID", "cloudflare.account_id"),
    Setting(
        "cloudflare_zone_id",
        "CLOUDFLARE_ZONE_ID",
        "cloudflare.zone_id",
        help="the domain's zone id (spares a zone lookup per process; looked up when unset)",
    ),
    Setting("domain", "FATCTL_DOMAIN", "domain", help="agents are served at <agent>.<domain>"),
    Setting("engine", "FATCTL_ENGINE", "engine", help="pulumi, hcloud or auto"),
    Setting(
        "probe_port",
        "FATCTL_PROBE_PORT",
        "probe.port",
        help="HTTPS port the fleet prober asks /readyz on (fatctl.monitoring.sweep)",
    ),
    Setting(
        "probe_ca_file",
        "FATCTL_PROBE_CA_FILE",
        "probe.ca_file",
        help="PEM file of the only CAs the prober trusts; empty: the system's roots",
    ),
    Setting(
        "probe_by_address",
        "FATCTL_PROBE_BY_ADDRESS",
        "probe.by_address",
        help="1: probe each box at its recorded IP with its name as SNI and Host (no DNS)",
    ),
    Setting("pulumi_backend_url", "FATCTL_PULUMI_BACKEND", "pulumi.backend_url"),
    Setting("api_retries", "FATCTL_API_RETRIES", "api.retries", help="attempts per cloud API call"),
    Setting(
        "poll_interval", "FATCTL_POLL_INTERVAL", "api.poll_interval", help="seconds between polls"
    ),
    Setting("r2_bucket", "FATCTL_R2_BUCKET", "r2.bucket"),
    Setting("r2_endpoint", "FATCTL_R2_ENDPOINT", "r2.endpoint"),
    Setting(
        "r2_parent_access_key_id",
        "FATCTL_R2_PARENT_ACCESS_KEY_ID",
        "r2.parent_access_key_id",
        help="access key id of the bucket-scoped R2 token that temporary credentials derive from",
    ),
    Setting("operator_cidrs", "FATCTL_OPERATOR_CIDRS", "operator_cidrs"),
    Setting("server_type", "FATCTL_SERVER_TYPE", "defaults.server_type"),
    Setting("location", "FATCTL_LOCATION", "defaults.location"),
    Setting(
        "acme_email",
        "FATCTL_ACME_EMAIL",
        "tls.acme_email",
        help="ACME account e-mail; set, Caddy falls back to ZeroSSL past Let's Encrypt's limit",
    ),
    Setting(
        "fallbacks",
        "FATCTL_FALLBACKS",
        "defaults.fallbacks",
        help="type@location alternatives, in order, when Hetzner has no room for the default",
    ),
    Setting("image", "FATCTL_IMAGE", "defaults.image"),
    Setting("runtime_version", "FATCTL_RUNTIME_VERSION", "defaults.runtime_version"),
    Setting("operator_user", "FATCTL_OPERATOR_USER", "ssh.operator_user"),
    Setting("operator_key_file", "FATCTL_OPERATOR_KEY_FILE", "ssh.operator_key_file"),
    Setting("ssh_port", "FATCTL_SSH_PORT", "ssh.port", help="SSH port of the boxes"),
    Setting("customer_user", "FATCTL_CUSTOMER_USER", "ssh.customer_user"),
    Setting("ssh_jump", "FATCTL_SSH_JUMP", "ssh.jump", help="bastion as user@host[:port]"),
    Setting("ssh_jump_host_key", "FATCTL_SSH_JUMP_HOST_KEY", "ssh.jump_host_key"),
    Setting(
        "price_managed",
        "FATCTL_PRICE_MANAGED",
        "plans.managed_price",
        help="what a managed customer pays, EUR/month net (fatctl cost)",
    ),
    Setting(
        "price_byok",
        "FATCTL_PRICE_BYOK",
        "plans.byok_price",
        help="what a BYOK customer pays, EUR/month net (fatctl cost)",
    ),
    Setting(
        "pricing_ttl",
        "FATCTL_PRICING_TTL",
        "api.pricing_ttl",
        help="seconds the Hetzner price list is cached on disk",
    ),
    Setting(
        "archive_retention_days",
        "FATCTL_ARCHIVE_RETENTION_DAYS",
        "lifecycle.archive_retention_days",
        help="days an archived agent's data and backups are kept before `archive purge`",
    ),
    Setting(
        "image_build_type",
        "FATCTL_IMAGE_BUILD_TYPE",
        "image.build_server_type",
        help="server type of the golden-image builder",
    ),
    Setting(
        "managed_model",
        "FATCTL_MANAGED_MODEL",
        "plans.managed_model",
        help="provider/model managed agents think with (the platform's key pays)",
    ),
    Setting(
        "managed_model_base_url",
        "FATCTL_MANAGED_MODEL_BASE_URL",
        "plans.managed_model_base_url",
        help="the managed provider's API base URL; empty is the provider's own",
    ),
    Setting(
        "telegram_api_root",
        "FATCTL_TELEGRAM_API_ROOT",
        "channels.telegram_api_root",
        help="Telegram Bot API root the boxes use; empty is Telegram's own",
    ),
    Setting(
        "webhook_url",
        "FATCTL_WEBHOOK_URL",
        "webhooks.url",
        help="where `fatctl serve` posts signed events (https, or http to loopback); empty: none",
    ),
    Setting(
        "webhook_secret_overlap_h",
        "FATCTL_WEBHOOK_SECRET_OVERLAP_H",
        "webhooks.secret_overlap_h",
        help="hours the replaced webhook signing secret still signs (a second v1=) after a "
        "rotation, while the platform switches; 0: none",
    ),
    # fatctl serve's own alert notifications (fatctl.monitoring.notify_channels checks them).
    Setting(
        "notify_webhook_url",
        "FATCTL_NOTIFY_WEBHOOK_URL",
        "notify.webhook_url",
        True,
        "where fatctl serve posts alert starts and ends (https, or http to loopback); empty: none",
    ),
    Setting(
        "notify_smtp_host",
        "FATCTL_NOTIFY_SMTP_HOST",
        "notify.smtp_host",
        help="SMTP server for alert e-mails; empty: no e-mail",
    ),
    Setting(
        "notify_smtp_port",
        "FATCTL_NOTIFY_SMTP_PORT",
        "notify.smtp_port",
        help="SMTP port (default 587, or 465 with ssl)",
    ),
    Setting(
        "notify_smtp_tls",
        "FATCTL_NOTIFY_SMTP_TLS",
        "notify.smtp_tls",
        help="starttls (default), ssl, or none (a relay on loopback only)",
    ),
    Setting(
        "notify_smtp_user",
        "FATCTL_NOTIFY_SMTP_USER",
        "notify.smtp_user",
        help="SMTP login; empty: none",
    ),
    Setting(
        "notify_smtp_password",
        "FATCTL_NOTIFY_SMTP_PASSWORD",
        "notify.smtp_password",
        True,
        "SMTP password",
    ),
    Setting(
        "notify_smtp_from",
        "FATCTL_NOTIFY_SMTP_FROM",
        "notify.smtp_from",
        help="the alert e-mails' From address",
    ),
    Setting(
        "notify_smtp_to",
        "FATCTL_NOTIFY_SMTP_TO",
        "notify.smtp_to",
        help="comma-separated recipients of the alert e-mails",
    ),
    Setting(
        "notify_max_per_window",
        "FATCTL_NOTIFY_MAX_PER_WINDOW",
        "notify.max_per_window",
        help="messages per window per channel; the last one summarises any overflow",
    ),
    Setting(
        "notify_window_min",
        "FATCTL_NOTIFY_WINDOW_MIN",
        "notify.window_min",
        help="the rate limit's window in minutes",
    ),
    Setting(
        "repair_after_failures",
        "FATCTL_REPAIR_AFTER_FAILURES",
        "repair.after_failures",
        help="consecutive failed health sweeps before automatic repair starts on a box",
    ),
    Setting(
        "repair_rungs_managed",
        "FATCTL_REPAIR_RUNGS_MANAGED",
        "repair.rungs_managed",
        help="the managed plan's repair ladder, in order (restart,reboot,rebuild); off: none",
    ),
    Setting(
        "repair_rungs_byok",
        "FATCTL_REPAIR_RUNGS_BYOK",
        "repair.rungs_byok",
        help="the byok plan's repair ladder, in order (restart,reboot,rebuild); off: none",
    ),
    Setting(
        "repair_max_per_window",
        "FATCTL_REPAIR_MAX_PER_WINDOW",
        "repair.max_per_window",
        help="repair rungs a box may need within the window before it is paged instead",
    ),
    Setting(
        "repair_window_h",
        "FATCTL_REPAIR_WINDOW_H",
        "repair.window_h",
        help="hours over which repair rungs are counted against repair.max_per_window",
    ),
    Setting(
        "repair_gate_s",
        "FATCTL_REPAIR_GATE_S",
        "repair.gate_s",
        help="seconds a restart or reboot rung waits for the box to say healthy before it "
        "fails and the next rung may run (a rebuild keeps the provision flow's own gate)",
    ),
    Setting(
        "worker_heartbeat_s",
        "FATCTL_WORKER_HEARTBEAT_S",
        "workers.heartbeat_s",
        help="seconds between a service process's heartbeats (fatctl worker, fatctl serve)",
    ),
    Setting(
        "worker_dead_after_s",
        "FATCTL_WORKER_DEAD_AFTER_S",
        "workers.dead_after_s",
        help="seconds without a heartbeat after which a live worker takes over a worker's "
        "unfinished workflows (at least twice the heartbeat)",
    ),
    Setting(
        "worker_budget_batch",
        "FATCTL_WORKER_BUDGET_BATCH",
        "workers.budget_batch",
        help="API tokens a service process takes at once from the shared rate budget",
    ),
    Setting(
        "sandbox",
        "FATCTL_SANDBOX",
        "sandbox",
        help="1: boxes are the sandbox's (golden image, internal CA); its env file sets it",
    ),
    *(
        Setting(f"box_{name}", f"FATCTL_BOX_{name.upper()}", f"box.{name}", help=text)
        for name, text in BOX_LAYOUT
    ),
    *(
        Setting(
            f"schedule_{name}",
            f"FATCTL_SCHEDULE_{name.upper()}",
            f"schedules.{name}",
            help=f"cron of `fatctl serve`'s {name.replace('_', '-')} schedule (5 or 6 fields, "
            "UTC); off disables it; empty keeps fatctl.service.schedules' default",
        )
        for name in ("r2_rotate", "reconcile", "health_sweep", "backup_verify")
    ),
)


def default_data_dir() -> Path:
    """The user's data dir (XDG), where the embedded SQLite file and Pulumi backend live."""
    if override := os.environ.get("FATCTL_DATA_DIR"):
        return Path(override)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fatctl"


_ACME_EMAIL = re.compile(r"[A-Za-z0-9._+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}")


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one invocation."""

    data_dir: Path
    database_url: str
    master_key: Sensitive | None = None
    previous_master_keys: Sensitive | None = None
    hcloud_token: Sensitive | None = None
    hcloud_endpoint: str = "https://api.hetzner.cloud/v1"
    cloudflare_api_token: Sensitive | None = None
    cloudflare_base_url: str = "https://api.cloudflare.com/client/v4"
    cloudflare_account_id: str = ""
    cloudflare_zone_id: str = ""
    domain: str = ""
    engine: str = "auto"
    probe_port: str = "443"
    probe_ca_file: str = ""
    probe_by_address: str = "0"
    pulumi_backend_url: str = ""
    api_retries: str = "6"
    poll_interval: str = "1.0"
    r2_bucket: str = "fat-agents"
    r2_endpoint: str = ""
    r2_parent_access_key_id: str = ""
    operator_cidrs: str = "0.0.0.0/0,::/0"
    server_type: str = "cx23"
    location: str = "fsn1"
    image: str = "debian-12"
    runtime_version: str = "2026.9.6"
    operator_user: str = "fatops"
    operator_key_file: str = ""
    ssh_port: str = "22"
    customer_user: str = "customer"  # cloud_init.layout.CUSTOMER_USER
    ssh_jump: str = ""  # optional bastion, user@host[:port]
    ssh_jump_host_key: str = ""  # its pinned OpenSSH public key line
    price_managed: str = "29.00"  # EUR/month net, what a managed customer pays
    price_byok: str = "12.00"  # EUR/month net, what a BYOK customer pays
    pricing_ttl: str = "86400"  # seconds; Hetzner changes prices rarely
    archive_retention_days: str = "90"  # lifecycle.archive checks it
    image_build_type: str = "cx23"  # the builder only installs packages
    managed_model: str = "fireworks/accounts/fireworks/models/minimax-m2p1"  # serving.py
    managed_model_base_url: str = ""
    telegram_api_root: str = ""
    webhook_url: str = ""  # fatctl.service.webhooks.target checks it
    webhook_secret_overlap_h: str = "24"  # noqa: S105  hours, not a secret (webhooks.target)
    # fatctl serve's alert notifications (fatctl.monitoring.notify_channels).
    notify_webhook_url: Sensitive | None = None  # a chat webhook's URL carries its token
    notify_smtp_host: str = ""
    notify_smtp_port: str = ""
    notify_smtp_tls: str = "starttls"
    notify_smtp_user: str = ""
    notify_smtp_password: Sensitive | None = None
    notify_smtp_from: str = ""
    notify_smtp_to: str = ""
    notify_max_per_window: str = "10"
    notify_window_min: str = "60"
    # The automatic repair ladder (fatctl.services.repair.ladder reads and checks them).
    repair_after_failures: str = "2"
    repair_rungs_managed: str = "restart,reboot,rebuild"
    repair_rungs_byok: str = "restart,reboot,rebuild"
    repair_max_per_window: str = "5"
    repair_window_h: str = "24"
    repair_gate_s: str = "900"
    # Service processes (fatctl.service.workers reads and checks them).
    worker_heartbeat_s: str = "10"
    worker_dead_after_s: str = "30"
    worker_budget_batch: str = "5"
    sandbox: str = ""  # see `in_sandbox`
    # Box layout overrides (BOX_LAYOUT); "" keeps the layout's own value.
    box_root: str = ""
    box_install: str = ""
    box_test_boot: str = ""
    box_restart: str = ""
    box_health: str = ""
    box_started: str = ""
    box_lock: str = ""
    box_sudo: str = ""
    box_fs_root: str = ""
    box_converge_state: str = ""
    box_daemon_reload: str = ""
    box_service: str = ""
    box_owners: str = ""
    # `fatctl serve`'s schedules (fatctl.service.schedules): cron, "off", or "" for the default.
    schedule_r2_rotate: str = ""
    schedule_reconcile: str = ""
    schedule_health_sweep: str = ""
    schedule_backup_verify: str = ""
    config_file: Path | None = None
    context: str = ""  # the named context in use (fatctl.contexts); "" is the top level
    fallbacks: str = ""  # "type@location,..." (fatctl.infra.capacity)
    acme_email: str = ""  # see `checked_acme_email`
    # The fleet's Hetzner projects ([hcloud.projects.NAME]); () is one project, as before them.
    hcloud_projects: tuple[HcloudProject, ...] = ()
    # The project hcloud_token/hcloud_endpoint belong to once bound by `for_project` ("" the
    # top level's); None: not bound, these settings speak for the whole fleet.
    hcloud_project: str | None = None

    @property
    def checked_acme_email(self) -> str:
        """The boxes' ACME account address ("" unset). With one, Caddy issues from Let's
        Encrypt and, when that fails (its 50 new certificates per registered domain a week),
        from ZeroSSL (docs/operations.md, Certificates). It goes into the Caddyfile, so only
        plain addresses pass: no Caddy placeholder or block characters."""
        value = self.acme_email.strip()
        if value and not _ACME_EMAIL.fullmatch(value):
            raise ConfigError(f"acme_email {value[:60]!r} is not a plain e-mail address "
                              "(letters, digits, '.', '_', '+', '-' before the @)")  # fmt: skip
        return value

    @property
    def several_projects(self) -> bool:
        """The fleet spans named Hetzner projects (placement and routing by project)."""
        return any(p.name for p in self.hcloud_projects)

    def project(self, name: str) -> HcloudProject:
        """The project `name` ("" the top level's), or a ConfigError naming the known ones."""
        for found in self.hcloud_projects or (self._top_project(),):
            if found.name == name:
                return found
        known = ", ".join(p.label for p in self.hcloud_projects) or DEFAULT_PROJECT
        shown = name or DEFAULT_PROJECT
        raise ConfigError(f"unknown Hetzner project {shown!r}; fatctl.toml defines: {known}")

    def for_project(self, name: str) -> Settings:
        """These settings talking to project `name`: its token and endpoint in place of the
        top level's, so any engine built from them reaches that project only."""
        found = self.project(name)
        return replace(self, hcloud_token=found.token, hcloud_endpoint=found.endpoint,
                       hcloud_project=found.name)  # fmt: skip

    def _top_project(self) -> HcloudProject:
        return HcloudProject("", self.hcloud_token, self.hcloud_endpoint)

    @property
    def in_sandbox(self) -> bool:
        """The boxes are the sandbox's: `sandbox` is set to anything but 0."""
        return self.sandbox not in ("", "0")

    def require(self, attr: str) -> Any:
        """Return a setting or fail with a line naming the env var and the toml key to set."""
        value = getattr(self, attr)
        if value in (None, ""):
            spec = next(s for s in SETTINGS if s.attr == attr)
            raise ConfigError(
                f"missing setting {attr}: set {spec.env} or '{spec.toml}' in fatctl.toml"
            )
        return value

    def public_view(self) -> dict[str, str]:
        """Every setting with its source-independent value; secrets shown only as set/unset."""
        out: dict[str, str] = {"data_dir": str(self.data_dir)}
        for f in fields(self):
            if f.name in ("data_dir",):
                continue
            value = getattr(self, f.name)
            if isinstance(value, Sensitive):
                out[f.name] = "*** (set)"
            elif f.name == "hcloud_projects":
                out[f.name] = ", ".join(p.label for p in value) or "(one project)"
            elif value is None:
                out[f.name] = "(unset)"
            else:
                out[f.name] = str(value)
        return out


def find_config_file(environ: dict[str, str]) -> Path | None:
    """`FATCTL_CONFIG`, else ./fatctl.toml, else the user's config dir."""
    if explicit := environ.get("FATCTL_CONFIG"):
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"FATCTL_CONFIG points at {path}, which is not a file")
        return path
    for candidate in (Path.cwd() / "fatctl.toml", config_dir(environ) / "fatctl.toml"):
        if candidate.is_file():
            return candidate
    return None


def config_dir(environ: dict[str, str]) -> Path:
    """The user's fatctl config dir (XDG): its fatctl.toml and the current context."""
    return Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "fatctl"


def read_config(environ: dict[str, str]) -> tuple[Path | None, dict[str, Any], str]:
    """The config file in effect, its parsed document ({} without one), and how to name it."""
    config_file = find_config_file(environ)
    if config_file is None:
        return None, {}, "fatctl.toml (none found)"
    try:
        return config_file, tomllib.loads(config_file.read_text()), str(config_file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file} is not valid TOML: {exc}") from None


def context_names(environ: dict[str, str] | None = None) -> tuple[list[str], str, str]:
    """The contexts fatctl.toml defines, the name a run would use ("" for none; not checked),
    and the file, for `fatctl context list|use` (which must work while the recorded one is bad)."""
    env = dict(os.environ if environ is None else environ)
    _, doc, source = read_config(env)
    known = contexts.defined(doc, source)
    return sorted(known), contexts.selected(known, env, config_dir(env))[0], source


def known_context(name: str, how: str, environ: dict[str, str] | None = None) -> Path:
    """Refuse `name` (asked for by `how`) unless fatctl.toml defines it; return the config
    dir, where `fatctl context use` records it."""
    env = dict(os.environ if environ is None else environ)
    _, doc, source = read_config(env)
    known = contexts.defined(doc, source)
    if name not in known:
        raise contexts.unknown(name, known, source, how)
    return config_dir(env)


def _data_dir(env: dict[str, str], chosen: contexts.Chosen, config_file: Path | None) -> Path:
    """FATCTL_DATA_DIR, else the context's `data_dir` (relative to its fatctl.toml), else the
    default one, or a context's own dir under it."""
    if "FATCTL_DATA_DIR" in env:
        return Path(env["FATCTL_DATA_DIR"])
    if chosen.data_dir:
        path = Path(chosen.data_dir).expanduser()
        return path if path.is_absolute() or config_file is None else config_file.parent / path
    base = default_data_dir()
    return base / "contexts" / chosen.name if chosen.name else base


def _toml_lookup(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load_settings(environ: dict[str, str] | None = None, *, context: str | None = None) -> Settings:
    """Build `Settings` from the environment and the config file; no network, no database.
    `context` names the context to read, as FATCTL_CONTEXT would (None: the run's own)."""
    env = dict(os.environ if environ is None else environ)
    if context is not None:
        env["FATCTL_CONTEXT"] = context
    config_file, doc, source = read_config(env)
    chosen = contexts.choose(doc, env, config_dir(env), source)
    doc = chosen.doc
    data_dir = _data_dir(env, chosen, config_file)
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'fatctl.sqlite'}",
        "config_file": config_file,
        "context": chosen.name,
    }
    for spec in SETTINGS:
        raw = env.get(spec.env)
        if raw is None:
            found = _toml_lookup(doc, spec.toml)
            if isinstance(found, list):
                found = ",".join(str(x) for x in found)
            elif isinstance(found, bool):  # the environment's spelling of a switch
                found = "1" if found else "0"
            raw = None if found is None else str(found)
        if raw is None or raw == "":
            continue
        values[spec.attr] = Sensitive(raw) if spec.secret else raw
    if not values.get("pulumi_backend_url"):
        values["pulumi_backend_url"] = f"file://{data_dir / 'pulumi'}"
    endpoint = values.get("hcloud_endpoint") or Settings.hcloud_endpoint
    values["hcloud_projects"] = hcloud_projects(
        doc.get("hcloud"), values.get("hcloud_token"), endpoint, env, source
    )
    return Settings(**values)
