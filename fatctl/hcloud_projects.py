"""The Hetzner projects of one fleet, as fatctl.toml declares them (`[hcloud.projects.NAME]`).

Hetzner's limits (servers, primary IPs, 3600 requests an hour) are per project, so a fleet past
a few hundred agents spans several. Each table names a project's token (`token_env`, the
variable holding it, or `token`), its endpoint, its `max_servers` cap and the `reserve` of its
rate budget left to other clients. Read by fatctl.config; pure apart from the environment
mapping it is handed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fatctl.errors import ConfigError
from fatctl.sensitive import Sensitive

DEFAULT_PROJECT = "default"  # how the top level's project is named in output
_PROJECT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?")


@dataclass(frozen=True)
class HcloudProject:
    """One Hetzner project of the fleet. Hetzner's limits (servers, primary IPs, the 3600
    requests an hour) are per project, so each has its own token, server cap and budget."""

    name: str  # "" is the top level's hcloud.token: where agents placed before projects live
    token: Sensitive | None
    endpoint: str
    max_servers: int | None = None  # None: no cap but Hetzner's own
    reserve: float | None = None  # share of the project's rate budget left to other clients

    @property
    def label(self) -> str:
        return self.name or DEFAULT_PROJECT


def hcloud_projects(
    table: Any, top_token: Sensitive | None, endpoint: str, env: dict[str, str], source: str
) -> tuple[HcloudProject, ...]:
    """The `[hcloud.projects.NAME]` tables (token or token_env, endpoint, max_servers, reserve),
    after the top level's own project when it has a token; () when none are defined, so a
    single-project fleet is configured and behaves exactly as before projects existed."""
    named = table.get("projects") if isinstance(table, dict) else None
    if named is None:
        return ()
    if not isinstance(named, dict) or not named:
        raise ConfigError(f"'hcloud.projects' in {source} must be [hcloud.projects.NAME] tables")
    out = []
    if top_token:
        out.append(HcloudProject("", top_token, endpoint,
                                 _count(table, "max_servers", "hcloud", source)))  # fmt: skip
    for name, section in named.items():
        where = f"hcloud.projects.{name}"
        if not _PROJECT_NAME.fullmatch(name) or name == DEFAULT_PROJECT:
            raise ConfigError(f"project name {name[:40]!r} in {source}: use a-z, 0-9, '-', '_' "
                              f"(and not {DEFAULT_PROJECT!r}, the top level's)")  # fmt: skip
        if not isinstance(section, dict):
            raise ConfigError(f"{where} in {source} must be a table")
        out.append(HcloudProject(name, _project_token(section, env, where, source),
                                 str(section.get("endpoint") or endpoint),
                                 _count(section, "max_servers", where, source),
                                 _reserve(section, where, source)))  # fmt: skip
    return tuple(out)


def _project_token(section: dict[str, Any], env: dict[str, str], where: str, source: str) -> Any:
    """`token_env` names the variable holding the token (keeps it out of the file); `token`
    is the token itself. Never shown: wrapped the moment it is read."""
    if var := section.get("token_env"):
        if not env.get(str(var)):
            raise ConfigError(f"{where}.token_env in {source} names {var}, which is not set")
        return Sensitive(env[str(var)])
    if token := section.get("token"):
        return Sensitive(str(token))
    raise ConfigError(f"{where} in {source} has no token: set token_env (or token)")


def _count(section: dict[str, Any], key: str, where: str, source: str) -> int | None:
    raw = section.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ConfigError(f"{where}.{key} in {source} must be a whole number of at least 1")
    return raw


def _reserve(section: dict[str, Any], where: str, source: str) -> float | None:
    raw = section.get("reserve")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < 1:
        raise ConfigError(f"{where}.reserve in {source} must be a fraction from 0 to below 1")
    return float(raw)
