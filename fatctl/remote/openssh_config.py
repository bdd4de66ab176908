"""OpenSSH client config for a Target, so plain `ssh` pins the same host key fatctl pins.

Pure text: a `Host` stanza with `HostKeyAlias`, `StrictHostKeyChecking yes` and a
`UserKnownHostsFile` that fatctl owns, and the known_hosts lines for that alias.
"""

from __future__ import annotations

from fatctl.remote.target import Target


def alias_for(target: Target) -> str:
    return f"fatctl-{target.name}"


def known_hosts_lines(target: Target) -> list[str]:
    """One known_hosts line per pinned key, under the alias (not the IP, which may be reused)."""
    alias = alias_for(target)
    return [f"{alias} {' '.join(k.split()[:2])}" for k in target.host_keys]


def _stanza(target: Target, known_hosts: str) -> list[str]:
    lines = [
        f"Host {target.name}",
        f"    HostName {target.host}",
        f"    Port {target.port}",
        f"    User {target.user}",
        f"    HostKeyAlias {alias_for(target)}",
        "    StrictHostKeyChecking yes",
        f"    UserKnownHostsFile {known_hosts}",
        "    UpdateHostKeys no",
    ]
    if target.key_file:
        lines += [f"    IdentityFile {target.key_file}", "    IdentitiesOnly yes"]
    if target.jump is not None:
        lines.append(f"    ProxyJump {target.jump.name}")
    return lines


def config_stanza(target: Target, known_hosts: str) -> str:
    """The `Host` block(s) for `target` (and its jump host, which is pinned the same way)."""
    blocks = [_stanza(target, known_hosts)]
    if target.jump is not None:
        blocks.insert(0, _stanza(target.jump, known_hosts))
    return "\n\n".join("\n".join(b) for b in blocks) + "\n"


def merge_known_hosts(existing: str, targets: list[Target]) -> str:
    """Replace the lines of these targets' aliases in a known_hosts text, keeping all others."""
    aliases = {alias_for(t) for t in targets}
    kept = [line for line in existing.splitlines() if line.split(" ", 1)[0] not in aliases]
    for t in targets:
        kept += known_hosts_lines(t)
    return "\n".join(kept) + "\n"
