"""What the rendered user-data and files say: users, keys, packages, units, storage, TLS."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from cloud_init import layout as L
from cloud_init.files import in_user_data
from cloud_init.packages import BOX_PACKAGES, packages_for_image
from cloud_init.render import MAX_USER_DATA, render_files, render_user_data
from fatctl.domain import AgentSpec, HostKeyPair, ServicePlan
from fatctl.errors import BadInput
from tests.unit.cloud_init.variants import (
    CUSTOMER_KEY,
    OPERATOR_KEY,
    VARIANTS,
    Variant,
    make_spec,
)

STOCK = Variant("debian-12", False, ServicePlan.MANAGED, False)
GOLDEN = Variant("debian-13", True, ServicePlan.BYOK, True)
UNIT = "/etc/systemd/system/"


def doc_of(spec: AgentSpec) -> dict[str, Any]:
    text = render_user_data(spec)
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_write_files_carry_exactly_render_files(variant: Variant) -> None:
    spec = make_spec(variant)
    everything = render_files(spec)
    files = {path: f for path, f in everything.items() if in_user_data(path)}
    written = {e["path"]: e for e in doc_of(spec)["write_files"]}
    assert set(written) == set(files)
    # Only the skills, their helpers, fat-health and rclone's credential script (read once the
    # R2 keys are delivered) wait for the SSH delivery after boot.
    r2_keys = {L.R2_AWS_CONFIG, L.R2_CREDENTIALS_SCRIPT} if variant.r2 else set()
    # State backups too (R2 boxes with a recipient): they run long after the first boot.
    backups = {
        L.BACKUP_SCRIPT,
        L.BACKUP_RECIPIENT,
        L.BACKUP_POLICY,
        f"/etc/systemd/system/{L.BACKUP_UNIT}",
        f"/etc/systemd/system/{L.BACKUP_TIMER}",
    }
    r2_keys |= backups if variant.r2 else set()
    assert {p for p in everything if not in_user_data(p)} == {
        L.BROWSER_COMMAND, L.BROWSER_EVAL, L.HEALTH_COMMAND, *r2_keys,
        *(f"{L.SKILLS_DIR}/{s}/SKILL.md"
          for s in ("agent-storage", "browser", "github-login", "outbox-email", "pdf")),
    }  # fmt: skip
    for path, item in files.items():
        assert written[path]["content"] == item.content, path
        assert written[path]["permissions"] == f"{item.mode:04o}"
        assert written[path]["owner"] == "root:root"
        assert written[path]["defer"] is True


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_every_file_left_for_after_boot_is_delivered(variant: Variant) -> None:
    """What user-data leaves out reaches the box over SSH, unless it looks like a secret (those
    are fatctl's own deliveries): a rendered file named like one (backups' `policy.env`) was
    dropped by both, and the box's fat-backup found no upload target."""
    from fatctl.services.converge.diff import desired_files

    everything = render_files(make_spec(variant))
    assert set(desired_files(everything)) == set(everything)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_user_data_under_hetzner_limit(variant: Variant) -> None:
    size = len(render_user_data(make_spec(variant)).encode())
    assert 8_000 < size < MAX_USER_DATA


def test_too_large_user_data_is_bad_input() -> None:
    keys = tuple(f"{CUSTOMER_KEY[:-9]}user{i}" for i in range(200))
    spec = dataclasses.replace(make_spec(STOCK), customer_keys=keys)
    with pytest.raises(BadInput, match="over the 32768 limit"):
        render_user_data(spec)


def test_stock_installs_packages_and_runtime() -> None:
    spec = make_spec(STOCK)
    doc = doc_of(spec)
    assert doc["package_update"] is True
    assert doc["packages"] == list(BOX_PACKAGES)
    assert doc["runcmd"] == [[L.FIRSTBOOT_SCRIPT]]
    assert doc["locale"] == "C.UTF-8"  # en_US.UTF-8 is not generated on every image
    firstboot = render_files(spec)[L.FIRSTBOOT_SCRIPT].content
    assert f"\n{L.INSTALL_SCRIPT}\n" in firstboot


def test_ubuntu_drops_the_snap_only_browser() -> None:
    doc = doc_of(make_spec(dataclasses.replace(STOCK, image="ubuntu-24.04")))
    assert "chromium-headless-shell" not in doc["packages"]
    assert doc["packages"] == list(packages_for_image("ubuntu-24.04"))


def test_golden_image_touches_no_network_and_no_apt() -> None:
    spec = make_spec(GOLDEN)
    doc = doc_of(spec)
    for key in ("packages", "package_update", "package_upgrade", "apt", "snap"):
        assert key not in doc
    firstboot = render_files(spec)[L.FIRSTBOOT_SCRIPT].content
    assert L.INSTALL_SCRIPT not in firstboot
    assert "curl" not in firstboot and "apt-get" not in firstboot
    assert f"readlink {L.RUNTIME_ROOT}/current" in firstboot


def test_supplied_host_keys_replace_generated_ones() -> None:
    spec = make_spec(STOCK)
    doc = doc_of(spec)
    key = spec.host_keys[0]
    assert doc["ssh_deletekeys"] is True
    assert "ssh_genkeytypes" not in doc
    assert doc["ssh_keys"]["ed25519_public"] == key.public_key
    assert doc["ssh_keys"]["ed25519_private"] == key.private_key_pem


def test_without_host_keys_only_ed25519_is_generated() -> None:
    doc = doc_of(make_spec(STOCK, host_keys=()))
    assert doc["ssh_genkeytypes"] == ["ed25519"]
    assert doc["ssh_deletekeys"] is True
    assert "ssh_keys" not in doc


def test_bad_host_key_type_is_bad_input() -> None:
    bad = HostKeyPair("ssh-dss", "ssh-dss AAAA host", "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")
    with pytest.raises(BadInput, match="ssh-dss"):
        render_user_data(make_spec(STOCK, host_keys=(bad,)))


@pytest.mark.parametrize("customer", [False, True])
def test_users_and_sshd_allow_list(customer: bool) -> None:
    spec = make_spec(dataclasses.replace(STOCK, customer=customer))
    users = {u["name"]: u for u in doc_of(spec)["users"]}
    assert users[L.OPERATOR_USER]["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert users[L.OPERATOR_USER]["ssh_authorized_keys"] == [OPERATOR_KEY]
    assert users[L.SERVICE_USER]["system"] is True
    assert users[L.SERVICE_USER]["uid"] == L.SERVICE_UID
    assert "ssh_authorized_keys" not in users[L.SERVICE_USER]
    assert (L.CUSTOMER_USER in users) is customer
    if customer:
        assert users[L.CUSTOMER_USER]["ssh_authorized_keys"] == [CUSTOMER_KEY]
        assert "sudo" not in users[L.CUSTOMER_USER]
    sshd = render_files(spec)["/etc/ssh/sshd_config.d/10-fat-hardening.conf"].content
    # Always both: `keys push` creates the customer user with the first key, at any time.
    assert "\nAllowUsers fatops customer\n" in sshd
    for line in ("PasswordAuthentication no", "PermitRootLogin no"):
        assert f"\n{line}\n" in sshd


def test_gateway_unit_waits_for_env_and_runs_through_current() -> None:
    files = render_files(make_spec(STOCK))
    unit = files[UNIT + L.GATEWAY_UNIT].content
    assert "\nExecStart=/opt/openclaw/current/bin/openclaw gateway run --port 18789 " in unit
    assert "--bind loopback --auth token\n" in unit
    for line in (
        "Restart=always",
        f"ConditionPathExists={L.GATEWAY_ENV}",
        f"EnvironmentFile={L.GATEWAY_ENV}",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        f"ReadWritePaths={L.DATA_DIR} {L.STATE_DIR}",
        f"User={L.SERVICE_USER}",
        "WantedBy=multi-user.target",
    ):
        assert f"\n{line}\n" in unit, line
    # Found on a real boot: its seccomp filter makes openat2() fail, and the gateway with it.
    assert "RestrictSUIDSGID=yes" not in unit
    path_unit = files[UNIT + L.GATEWAY_PATH_UNIT].content
    # Not PathExists=: it restarted a gateway that had stopped on a config error (exit 78),
    # forever (found on a real box); the gateway's own unit starts it at boot.
    assert f"\nPathChanged={L.GATEWAY_ENV}\n" in path_unit and "\nPathExists=" not in path_unit
    for line in ("RestartPreventExitStatus=78", "IPAddressDeny=169.254.169.254"):
        assert f"\n{line}\n" in unit, line
    assert f"\nUnit={L.GATEWAY_UNIT}\n" in path_unit


def test_rclone_mount_unit_for_the_agent_prefix() -> None:
    files = render_files(make_spec(STOCK))
    unit = files[UNIT + L.DATA_UNIT].content
    assert "\nType=notify\n" in unit
    exec_line = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    assert exec_line.startswith(
        "ExecStart=/usr/bin/rclone mount r2:fat-agents/agents/ag-7f3k2 /data "
    )
    for option in (
        "--config /etc/rclone/rclone.conf",
        "--cache-dir /var/cache/rclone",
        "--vfs-cache-mode writes",
        # OpenClaw checks a replaced file's inode: a cached one fails every WhatsApp login save.
        "--attr-timeout 0",
    ):
        assert option in exec_line
    assert f"Before={L.GATEWAY_UNIT}" in unit
    # The keys come through the SDK's credential_process, never rclone's environment (which it
    # would keep until restarted: a rotation would have to restart the gateway with it).
    assert (
        f"Environment=AWS_CONFIG_FILE={L.R2_AWS_CONFIG}" in unit and "EnvironmentFile" not in unit
    )
    gateway = files[UNIT + L.GATEWAY_UNIT].content
    assert (
        L.DATA_UNIT in gateway
        and "ExecStartPre=/usr/bin/findmnt --mountpoint /data --types fuse.rclone" in gateway
    )
    conf = files[L.RCLONE_CONFIG].content
    assert "provider = Cloudflare" in conf and "access_key" not in conf
    assert "env_auth = true" in conf
    assert files[L.R2_AWS_CONFIG].content.endswith(
        f"credential_process = {L.R2_CREDENTIALS_SCRIPT}\n"
    )


def test_no_storage_means_no_mount_unit() -> None:
    files = render_files(make_spec(dataclasses.replace(STOCK, r2=False)))
    assert UNIT + L.DATA_UNIT not in files and L.RCLONE_CONFIG not in files
    assert L.DATA_UNIT not in files[UNIT + L.GATEWAY_UNIT].content


@pytest.mark.parametrize("tls_internal", [False, True])
def test_caddy_serves_the_agent_name(tls_internal: bool) -> None:
    spec = dataclasses.replace(make_spec(STOCK), tls_internal=tls_internal)
    caddyfile = render_files(spec)["/etc/caddy/Caddyfile"].content
    assert "\nalice.agents.example.com {\n" in caddyfile
    assert "reverse_proxy 127.0.0.1:18789" in caddyfile
    assert ("tls internal" in caddyfile) is tls_internal


def test_openclaw_config_is_loopback_token_auth() -> None:
    import json

    config = json.loads(render_files(make_spec(STOCK))[L.OPENCLAW_CONFIG].content)
    assert config["gateway"] == {
        "mode": "local",
        "port": 18789,
        "bind": "loopback",
        "auth": {"mode": "token"},
        "trustedProxies": ["127.0.0.1", "::1"],
        "controlUi": {"allowedOrigins": ["https://alice.agents.example.com"]},
    }
    # Not /data: OpenClaw bootstraps the workspace with hard links, which the R2 mount refuses.
    assert config["agents"]["defaults"]["workspace"] == "/var/lib/openclaw/workspace"
    assert config["skills"]["load"]["extraDirs"] == ["/opt/fat-skills"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Alice!"}, "DNS label"),
        ({"image": "centos-9"}, "not one of"),
        ({"runtime_version": "latest"}, "runtime version"),
        ({"node_version": "24; rm -rf /"}, "node version"),
        ({"operator_keys": ()}, "no operator keys"),
        ({"operator_keys": ("ssh-ed25519 AAAA\nroot",)}, "one-line"),
        ({"domain": "exa mple.com"}, "domain"),
    ],
)
def test_unsafe_values_are_bad_input(change: dict, message: str) -> None:
    spec = dataclasses.replace(make_spec(STOCK), **change)
    with pytest.raises(BadInput, match=message):
        render_user_data(spec)
