"""Every file an agent's box gets, rendered from its `AgentSpec` (pure, no I/O).

The same list is carried by cloud-init's `write_files` at creation and re-applied over SSH by
the converge flow, so a box configured either way ends up with identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cloud_init import layout as L
from cloud_init.compact import without_comments
from cloud_init.environment import TEMPLATE_PACKAGE, TemplateSource, render
from cloud_init.inputs import check_spec, host_key_kinds
from cloud_init.install_script import render_install_script
from cloud_init.openclaw_config import openclaw_config
from fatctl.domain import AgentSpec


@dataclass(frozen=True)
class RenderedFile:
    """One file for the box: where it goes, what it holds, and who may read it."""

    path: str
    content: str
    mode: int = 0o644
    owner: str = "root:root"

    @property
    def is_script(self) -> bool:
        return self.content.startswith("#!/bin/bash") or self.content.startswith("#!/bin/sh")

    @property
    def is_unit(self) -> bool:
        return self.path.startswith("/etc/systemd/system/")


# (box path, template, mode, only with R2 storage)
_FILES: tuple[tuple[str, str, int, bool], ...] = (
    ("/etc/ssh/sshd_config.d/10-fat-hardening.conf", "etc/sshd-hardening.conf.j2", 0o644, False),
    ("/etc/nftables.conf", "etc/nftables.conf.j2", 0o755, False),
    ("/etc/apt/apt.conf.d/20auto-upgrades", "etc/20auto-upgrades.j2", 0o644, False),
    ("/etc/caddy/Caddyfile", "etc/Caddyfile.j2", 0o644, False),
    (L.OPENCLAW_CONFIG, "etc/openclaw.json.j2", 0o644, False),
    (L.RCLONE_CONFIG, "etc/rclone.conf.j2", 0o644, True),
    (L.R2_AWS_CONFIG, "etc/rclone-aws.conf.j2", 0o644, True),
    (L.R2_CREDENTIALS_SCRIPT, "scripts/fat-r2-credentials.sh.j2", 0o700, True),
    (f"/etc/systemd/system/{L.GATEWAY_UNIT}", "units/openclaw-gateway.service.j2", 0o644, False),
    (f"/etc/systemd/system/{L.GATEWAY_PATH_UNIT}", "units/openclaw-gateway.path.j2", 0o644, False),
    (f"/etc/systemd/system/{L.DATA_UNIT}", "units/rclone-data.service.j2", 0o644, True),
    (f"/etc/systemd/system/{L.SEED_UNIT}", "units/fat-seed-data.service.j2", 0o644, False),
    (f"/etc/systemd/system/{L.SWAP_UNIT}", "units/fat-swap.service.j2", 0o644, False),
    ("/usr/local/sbin/fat-seed-data", "scripts/fat-seed-data.sh.j2", 0o755, False),
    ("/usr/local/sbin/fat-swap", "scripts/fat-swap.sh.j2", 0o755, False),
    (L.HEALTH_COMMAND, "scripts/fat-health.sh.j2", 0o755, False),
    (L.FIRSTBOOT_SCRIPT, "scripts/fat-firstboot.sh.j2", 0o755, False),
    (L.BROWSER_COMMAND, "scripts/fat-browser.sh.j2", 0o755, False),
    (L.BROWSER_EVAL, "scripts/fat-browser-eval.mjs.j2", 0o644, False),
    (f"{L.SKILLS_DIR}/outbox-email/SKILL.md", "skills/outbox-email/SKILL.md.j2", 0o644, False),
    (f"{L.SKILLS_DIR}/browser/SKILL.md", "skills/browser/SKILL.md.j2", 0o644, False),
    (f"{L.SKILLS_DIR}/pdf/SKILL.md", "skills/pdf/SKILL.md.j2", 0o644, False),
    (f"{L.SKILLS_DIR}/github-login/SKILL.md", "skills/github/SKILL.md.j2", 0o644, False),
    (f"{L.SKILLS_DIR}/agent-storage/SKILL.md", "skills/agent-storage/SKILL.md.j2", 0o644, False),
)
# State backups (only with R2 storage and a backup recipient): all after boot (AFTER_BOOT).
_BACKUP_FILES: tuple[tuple[str, str, int], ...] = (
    (L.BACKUP_SCRIPT, "scripts/fat-backup.sh.j2", 0o755),
    (L.BACKUP_RECIPIENT, "etc/fat-backup-recipient.j2", 0o644),
    (L.BACKUP_POLICY, "etc/fat-backup-policy.conf.j2", 0o644),
    (f"/etc/systemd/system/{L.BACKUP_UNIT}", "units/fat-backup.service.j2", 0o644),
    (f"/etc/systemd/system/{L.BACKUP_TIMER}", "units/fat-backup.timer.j2", 0o644),
)


_BACKUP_PATHS = frozenset(path for path, _, _ in _BACKUP_FILES)


def _seed_config(spec: AgentSpec) -> str:
    """config.json for a new agent: identity only; the platform fills in the rest later."""
    return json.dumps({"agent": spec.name, "agent_id": spec.agent_id, "plan": spec.plan.value})


def template_context(spec: AgentSpec) -> dict[str, Any]:
    """The variables every template sees."""
    r2 = spec.r2
    # The customer may log in whether or not a key exists at first boot: `keys push` creates
    # the user with the first customer key, and sshd must not refuse it then.
    login_users = [L.OPERATOR_USER, L.CUSTOMER_USER]
    context: dict[str, Any] = {
        "spec": spec,
        "L": L,
        "fqdn": spec.fqdn,
        "has_r2": r2 is not None,
        "r2": r2,
        "login_users": login_users,
        # sshd loads only the host keys the box has: no warnings about absent rsa/ecdsa keys.
        "host_key_types": [kind for kind, _ in host_key_kinds(spec.host_keys)] or ["ed25519"],
        "openclaw_config": openclaw_config(spec),
        "seed_config": _seed_config(spec),
        "node": f"{L.NODE_ROOT}/{spec.node_version}/bin/node",
        "eval_script": L.BROWSER_EVAL,
    }
    if r2 is not None:
        prefix = r2.prefix.strip("/")
        context["r2_prefix"] = prefix
        context["rclone_remote"] = f"r2:{r2.bucket}/{prefix}" if prefix else f"r2:{r2.bucket}"
        # Cloudflare's quirks only for real R2; anything else (the sandbox's moto) is generic S3.
        is_r2 = ".r2.cloudflarestorage.com" in r2.endpoint
        context["r2_provider"] = "Cloudflare" if is_r2 else "Other"
    return context


# What the first boot does not need stays out of user-data (Hetzner's 32 KiB limit): the skills
# and their helpers, and fat-health (first asked by the health gate after the secrets), arrive
# with the secrets over SSH, when provisioning syncs the box's files with its spec
# (`fatctl.services.serving.push.sync_box`), and converge keeps them current.
AFTER_BOOT = (
    f"{L.SKILLS_DIR}/",
    L.BROWSER_COMMAND,
    L.BROWSER_EVAL,
    L.HEALTH_COMMAND,
    # rclone's R2 keys come through these, read only once R2_ENV is delivered
    L.R2_AWS_CONFIG,
    L.R2_CREDENTIALS_SCRIPT,
    # state backups run long after the first boot, once the box has its R2 keys
    *(path for path, _, _ in _BACKUP_FILES),
)


def in_user_data(path: str) -> bool:
    return not path.startswith(AFTER_BOOT)


def render_files(
    spec: AgentSpec, templates: TemplateSource = TEMPLATE_PACKAGE
) -> dict[str, RenderedFile]:
    """Every file the box gets, keyed by its absolute path on the box.

    The install script is included (at `layout.INSTALL_SCRIPT`) so that upgrades and the
    converge flow find the same script on every box, golden or stock.
    """
    check_spec(spec)
    context = template_context(spec)
    out: dict[str, RenderedFile] = {}
    backups = spec.r2 is not None and bool(spec.backup_recipient)
    rows = [*_FILES, *((path, template, mode, True) for path, template, mode in _BACKUP_FILES)]
    for path, template, mode, needs_r2 in rows:
        if (needs_r2 and spec.r2 is None) or (path in _BACKUP_PATHS and not backups):
            continue
        text = _one_newline(render(template, templates, **context))
        item = RenderedFile(path, text, mode)
        if item.is_unit or item.is_script or path == "/etc/nftables.conf":
            item = RenderedFile(path, without_comments(text, template), mode)
        out[path] = item
    script = render_install_script(spec.runtime_version, spec.node_version, templates)
    out[L.INSTALL_SCRIPT] = RenderedFile(L.INSTALL_SCRIPT, _one_newline(script), 0o755)
    return out


def _one_newline(text: str) -> str:
    # cloud-init's literal blocks keep exactly one trailing newline; files match that.
    return text.rstrip("\n") + "\n"
