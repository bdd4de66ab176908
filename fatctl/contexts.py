"""Named contexts: several fleets in one fatctl.toml (staging and production, or one per Hetzner
project), each a `[contexts.NAME]` table with the top level's keys plus `data_dir`.

Which one a run uses: FATCTL_CONTEXT (the global `--context NAME` sets it), else the one
`fatctl context use NAME` recorded in the config dir's `current-context` file, else none, and
the top level alone applies as it did before contexts existed. A fatctl.toml that defines no
contexts ignores that file, so a config without contexts behaves exactly as it always did.

A context inherits the top level's shared keys (defaults, ssh, box layout, plans, ...) but never
the ones that say which fleet it is (`OWN_KEYS`): a context that leaves out its Hetzner token
has no token, rather than another fleet's, and one that leaves out its data dir gets its own
under the default one, so two contexts never share a database or a cloud by accident.
Environment variables still win over the context, as they win over the top level.

A context is a separate fleet. To grow one fleet past a Hetzner project's limits, give it
several projects instead (`[hcloud.projects.NAME]`, fatctl.hcloud_projects): one database,
new agents placed where there is room, every listing and reconcile over all of them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fatctl.errors import ConfigError
from fatctl.private_paths import FILE_MODE, private_dir

# Dotted fatctl.toml keys a context never inherits from the top level: the clouds' accounts,
# the state database and its master keys, the domain, the storage, the bastion, and the
# platform's webhook (staging's events must not reach production's platform).
OWN_KEYS = (
    "database_url", "master_key", "previous_master_keys", "domain", "hcloud", "cloudflare",
    "r2", "pulumi", "sandbox", "ssh.jump", "ssh.jump_host_key", "webhooks",
)  # fmt: skip
CURRENT_FILE = "current-context"
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class Chosen:
    """The context a run uses ("" for none) and the toml document its settings come from."""

    name: str
    doc: dict[str, Any]
    data_dir: str | None = None  # the context's own `data_dir` key, when it has one


def defined(doc: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """The `[contexts.NAME]` tables of a parsed fatctl.toml, checked; {} when there are none."""
    table = doc.get("contexts", {})
    if not isinstance(table, dict):
        raise ConfigError(f"'contexts' in {source} must be a table of [contexts.NAME] tables")
    for name, section in table.items():
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"context name {name[:40]!r} in {source}: use letters, digits, '.', '_' and '-'"
            )
        if not isinstance(section, dict):
            raise ConfigError(f"contexts.{name} in {source} must be a table")
    return table


def current_path(config_dir: Path) -> Path:
    return config_dir / CURRENT_FILE


def recorded(config_dir: Path) -> str:
    """The name `fatctl context use` recorded, or "" when none was."""
    try:
        with current_path(config_dir).open(encoding="utf-8", errors="replace") as fh:
            return fh.read(200).strip()
    except (FileNotFoundError, NotADirectoryError):
        return ""
    except OSError as exc:
        raise ConfigError(f"cannot read {current_path(config_dir)}: {exc.strerror}") from None


def record(config_dir: Path, name: str) -> Path:
    """Make `name` the current context: the file is written whole (0600) and then renamed in."""
    private_dir(config_dir)
    path = current_path(config_dir)
    partial = path.with_name(f".{CURRENT_FILE}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, f"{name}\n".encode())
    finally:
        os.close(fd)
    os.replace(partial, path)
    return path


def unknown(name: str, known: dict[str, Any], source: str, how: str) -> ConfigError:
    """The one refusal of a context that is not defined, naming the ones that are."""
    names = ", ".join(sorted(known)) if known else f"none are defined in {source}"
    return ConfigError(f"unknown context {name[:40]!r} ({how}); known contexts: {names}")


def selected(known: dict[str, Any], environ: dict[str, str], config_dir: Path) -> tuple[str, str]:
    """The name a run asks for ("" for none; not checked against `known`) and who asked."""
    if name := environ.get("FATCTL_CONTEXT", "").strip():
        return name, "FATCTL_CONTEXT or --context"
    if known and (name := recorded(config_dir)):
        return name, f"recorded by `fatctl context use` in {current_path(config_dir)}"
    return "", ""


def choose(doc: dict[str, Any], environ: dict[str, str], config_dir: Path, source: str) -> Chosen:
    """The context for this run (see the module docstring) and the document it reads."""
    known = defined(doc, source)
    top = {k: v for k, v in doc.items() if k != "contexts"}
    name, how = selected(known, environ, config_dir)
    if not name:
        return Chosen("", top)
    if name not in known:
        raise unknown(name, known, source, how)
    section = {k: v for k, v in known[name].items() if k not in ("contexts", "data_dir")}
    data_dir = known[name].get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str):
        raise ConfigError(f"contexts.{name}.data_dir in {source} must be a string (a path)")
    return Chosen(name, _merged(_shared(top), section), data_dir or None)


def _shared(top: dict[str, Any]) -> dict[str, Any]:
    """The top level without the keys a context never inherits."""
    out = dict(top)
    for dotted in OWN_KEYS:
        table, _, key = dotted.rpartition(".")
        if not table:
            out.pop(key, None)
        elif isinstance(out.get(table), dict):
            out[table] = {k: v for k, v in out[table].items() if k != key}
    return out


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, table by table (a context's [ssh] keeps the top's other keys)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
