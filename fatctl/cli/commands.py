"""The table of top-level commands, and how to build the Typer app for one invocation.

Typer turns every registered function into a click command up front (signatures, type hints),
which for fatctl's ~45 commands costs more than the rest of start-up. So the app is built for
the command actually invoked: that command's module is imported and registered for real, and
every other top-level name is a parameterless stub carrying only its one-line help (enough for
`fatctl --help`). A test keeps each stub's help equal to the real command's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import typer

from fatctl.cli.global_flags import HELP as GLOBAL_FLAGS_HELP


@dataclass(frozen=True)
class Loader:
    """Registers one module's commands on the root app; several names may share a loader."""

    module: str
    register: Callable[[typer.Typer, object], None]


def _sub_app(name: str, attr: str = "app") -> Callable[[typer.Typer, object], None]:
    return lambda app, mod: app.add_typer(getattr(mod, attr), name=name)


def _command(name: str, attr: str) -> Callable[[typer.Typer, object], None]:
    return lambda app, mod: app.command(name)(getattr(mod, attr))


def _module_register(app: typer.Typer, mod: object) -> None:
    mod.register(app)  # type: ignore[attr-defined]


def _keys(app: typer.Typer, mod: object) -> None:
    from fatctl.cli import keys_ssh

    keys_ssh.register(mod.app)  # type: ignore[attr-defined]
    app.add_typer(mod.app, name="keys")  # type: ignore[attr-defined]


LOADERS: dict[str, Loader] = {
    "agents": Loader("fatctl.cli.agents", _sub_app("agents")),
    "keys": Loader("fatctl.cli.keys", _keys),
    "secrets": Loader("fatctl.cli.secrets_cmd", _sub_app("secrets")),
    "config": Loader("fatctl.cli.config_cmd", _sub_app("config")),
    "context": Loader("fatctl.cli.context_cmd", _sub_app("context")),
    "db": Loader("fatctl.cli.db", _sub_app("db")),
    "audit": Loader("fatctl.cli.audit", _command("audit", "audit")),
    "render": Loader("fatctl.cli.render", _command("render", "render")),
    "ssh": Loader("fatctl.cli.ssh", _command("ssh", "ssh")),
    "exec": Loader("fatctl.cli.exec_cmd", _command("exec", "exec_")),
    "infra": Loader("fatctl.cli.infra_cmd", _module_register),
    "provision": Loader("fatctl.cli.provision", _module_register),
    "sandbox": Loader("fatctl.cli.sandbox", _sub_app("sandbox")),
    "upgrade": Loader("fatctl.cli.upgrade", _module_register),
    "converge": Loader("fatctl.cli.converge", _module_register),
    "reconcile": Loader("fatctl.cli.reconcile", _module_register),
    "preview": Loader("fatctl.cli.preview", _module_register),
    "cost": Loader("fatctl.cli.cost", _module_register),
    "image": Loader("fatctl.cli.image", _module_register),
    "model": Loader("fatctl.cli.model", _sub_app("model")),
    "channels": Loader("fatctl.cli.channels", _sub_app("channels")),
    "senders": Loader("fatctl.cli.senders", _sub_app("senders")),
    "version": Loader("fatctl.cli.version_cmd", _command("version", "version")),
    "serve": Loader("fatctl.cli.serve", _module_register),
    "worker": Loader("fatctl.cli.worker", _command("worker", "worker")),
    "tokens": Loader("fatctl.cli.tokens", _sub_app("tokens")),
    "backup": Loader("fatctl.cli.backup", _sub_app("backup")),
    "jobs": Loader("fatctl.cli.jobs", _sub_app("jobs")),
    "lifecycle": Loader("fatctl.cli.lifecycle", _module_register),
    "webhooks": Loader("fatctl.cli.webhooks", _sub_app("webhooks")),
    "repair": Loader("fatctl.cli.repair", _sub_app("repair")),
}

# name -> (loader, one-line help shown by `fatctl --help`), in the order help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "agents": ("agents", "Agents known to fatctl (one box each)."),
    "version": (
        "version",
        "fatctl's version, the pinned runtime and Node, the schema revision and SDK versions.",
    ),
    "provision": (
        "provision",
        "Create the agent's box and drive it to ready; a rerun continues where a run stopped.",
    ),
    "status": ("provision", "Agents as the database, the cloud and the boxes see them."),
    "destroy": (
        "provision",
        "Remove the agent's DNS records, server and stack (IPs and R2 data kept unless asked).",
    ),
    "model": ("model", "The model an agent thinks with, and its key."),
    "channels": ("channels", "Messaging channels an agent answers on."),
    "senders": ("senders", "Who may talk to an agent (its allowlist)."),
    "ssh": (
        "ssh",
        "Open a shell on AGENT's box as the operator user, or run `-- CMD` and exit with its code.",
    ),
    "exec": ("exec", "Run one command on many boxes at once."),
    "keys": ("keys", "SSH public keys allowed onto boxes."),
    "upgrade": (
        "upgrade",
        "Roll a runtime version across the fleet: canaries, batches, health gates, rollback.",
    ),
    "rollout": ("upgrade", "Inspect, resume or abort a recorded rollout."),
    "box": ("infra", "An agent's box at Hetzner: plan, status, power, rescue, snapshot, resize."),
    "rebuild": (
        "infra",
        "Reinstall the box on a fresh disk, keeping server, IPs and the customer's state.",
    ),
    "creds": ("infra", "Credentials on the boxes (R2 storage)."),
    "backup": ("backup", "State backups: take, list, verify, restore; keys for older agents."),
    "move": (
        "lifecycle",
        "Move the agent to a new server in another location, keeping the customer's state.",
    ),
    "suspend": (
        "lifecycle",
        "Back up, then delete the agent's server so it stops billing; IPs, DNS and data kept.",
    ),
    "resume": (
        "lifecycle",
        "Bring a suspended agent back on a new server on its kept IPs, with its backup restored.",
    ),
    "archive": (
        "lifecycle",
        "Archive a churned agent: back up, release its server, IPs and DNS, keep its data.",
    ),
    "webhooks": (
        "webhooks",
        "Signed webhooks to the platform: deliveries, dead letters, the secret.",
    ),
    "repair": ("repair", "Automatic repair: what it did, holds and pages."),
    "render": ("render", "Render an agent's cloud-init user-data and every file its box gets."),
    "secrets": ("secrets", "Encrypted secrets (values are never shown)."),
    "config": ("config", "Configuration (environment variables and fatctl.toml)."),
    "context": (
        "context",
        "Named contexts: which fleet (endpoints, tokens, database, domain) commands act on.",
    ),
    "db": ("db", "The state database's schema."),
    "audit": ("audit", "Show the audit trail, newest first."),
    "sandbox": ("sandbox", "The local sandbox cloud (emulators, S3, nspawn boxes)."),
    "converge": (
        "converge",
        "Re-render boxes' configuration and roll it out over SSH (per-box diff with --dry-run).",
    ),
    "preview": (
        "preview",
        "Show per agent what applying infra would change (exit 0: nothing, 3: changes pending).",
    ),
    "apply": (
        "preview",
        "Apply infra changes (type, firewall, labels) across the fleet in batches.",
    ),
    "reconcile": (
        "reconcile",
        "Compare the database, Hetzner, Cloudflare and the boxes: orphans, drift, missing pieces.",
    ),
    "image": (
        "image",
        "Golden images: snapshots with a runtime version preinstalled (build, list).",
    ),
    "cost": (
        "cost",
        "Monthly Hetzner cost per agent and in total, beside the plan's price (the margin).",
    ),
    "serve": ("serve", "Serve the HTTP API (/v1) and run its workflows until stopped."),
    "worker": ("worker", "Run the service's workflows and schedules (no HTTP) until stopped."),
    "tokens": ("tokens", "API tokens of `fatctl serve` (shown once, stored hashed)."),
    "jobs": ("jobs", "Schedules and workflows of `fatctl serve` (read-only)."),
}


def _stub(help_text: str) -> Callable[[], None]:
    def stub() -> None:  # never runs: the invoked command is always registered for real
        raise RuntimeError("command stub invoked")

    stub.__doc__ = help_text
    return stub


def build_app(selected: str | None) -> typer.Typer:
    """The root app with `selected` registered for real: every command when None (completion
    needs them all), none when "" (root help needs only the stubs' one-liners)."""
    app = typer.Typer(
        name="fatctl",
        help="Control plane for the fleet of dedicated OpenClaw agent boxes.",
        epilog=GLOBAL_FLAGS_HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    wanted = {key for name, (key, _) in COMMANDS.items() if selected in (None, name)}
    for key in LOADERS:
        if key in wanted:
            LOADERS[key].register(app, importlib.import_module(LOADERS[key].module))
    for name, (key, help_text) in COMMANDS.items():
        if key not in wanted:
            app.command(name, help=help_text)(_stub(help_text))
    return app


def invoked_command(argv: list[str]) -> str:
    """The top-level command named on the command line, or "" when none is a known one."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else ""
    return ""


def completion_command(environ: Mapping[str, str]) -> str | None:
    """The top-level command a shell-completion run completes inside, read from the words the
    shell passes (bash: COMP_WORDS; zsh, fish, PowerShell: _TYPER_COMPLETE_ARGS), so that only
    it is built: "" while the command itself is being typed (the stubs carry every name),
    None when there are no words to read (build them all).

    The word being typed counts too: a complete name builds that command, whose name the
    root still offers, and a partial one is no command at all.
    """
    from click.shell_completion import split_arg_string

    words = environ.get("COMP_WORDS", environ.get("_TYPER_COMPLETE_ARGS"))
    if words is None:
        return None
    return invoked_command(split_arg_string(words)[1:])
