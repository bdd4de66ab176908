"""Every variant passes the real validators, and a broken template fails them.

The validators are the real programs (cloud-init schema, shellcheck, systemd-analyze verify,
caddy validate); the broken-template tests render from a mutated copy of `templates/` and
prove each validator reports the fault it exists to catch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from cloud_init.render import render_files, render_install_script, render_user_data
from cloud_init.validate import KNOWN_KEYS, validate_files, validate_script, validate_user_data
from fatctl.domain import HostKeyPair, ServicePlan
from fatctl.errors import BadInput, ToolMissing
from tests.unit.cloud_init.variants import VARIANTS, Variant, make_spec

BASE = Variant("debian-12", False, ServicePlan.MANAGED, True)
TEMPLATES = Path(str(resources.files("templates")))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_every_variant_passes_all_validators(variant: Variant, host_key: HostKeyPair) -> None:
    spec = make_spec(variant, host_keys=(host_key,))
    assert validate_user_data(render_user_data(spec)) == []


def test_box_files_alone_pass(host_key: HostKeyPair) -> None:
    assert validate_files(render_files(make_spec(BASE, host_keys=(host_key,)))) == []


def test_install_script_passes_shellcheck() -> None:
    assert validate_script(render_install_script("2026.9.6", "24.21.0")) == []


def test_allow_list_is_real_cloud_init_keys() -> None:
    """Each allow-listed key exists in the installed cloud-init's schema."""
    # cloud-init lives in the system python, not ours: ask the interpreter its script runs on.
    tool = shutil.which("cloud-init")
    assert tool is not None
    python = Path(tool).read_text().splitlines()[0][2:].split()[0]
    where = "import cloudinit, os; print(os.path.dirname(cloudinit.__file__))"
    package = subprocess.run([python, "-c", where], capture_output=True, text=True, check=True)
    schema_path = Path(package.stdout.strip()) / "config/schemas/schema-cloud-config-v1.json"
    schema = json.loads(schema_path.read_text())
    keys = {
        k
        for d, v in schema["$defs"].items()
        if d.startswith("cc_")
        for k in v.get("properties", {})
    }
    assert KNOWN_KEYS - keys == {"merge_how", "merge_type"}


# (template file, text to find, replacement, a fragment the problem list must contain)
BREAKAGES = [
    (
        "cloud-config.yaml.j2",
        "ssh_pwauth: false",
        "ssh_pwauht: false",
        "unknown top-level key 'ssh_pwauht'",
    ),
    ("cloud-config.yaml.j2", "disable_root: true", "disable_root: maybe", "cloud-init schema"),
    ("cloud-config.yaml.j2", "  - [{{ L.FIRSTBOOT_SCRIPT }}]", "  - echo $(date", "runcmd:"),
    (
        "units/openclaw-gateway.service.j2",
        "Restart=always",
        "Restart=sometimes",
        "openclaw-gateway.service:",
    ),
    (
        "units/openclaw-gateway.service.j2",
        "ProtectSystem=strict",
        "ProtectSystm=strict",
        "Unknown key 'ProtectSystm'",
    ),
    ("units/rclone-data.service.j2", "Type=notify", "Type=notifying", "rclone-data.service:"),
    (
        "scripts/fat-seed-data.sh.j2",
        'if [ ! -e "${DATA}/MEMORY.md" ]; then',
        'if [ ! -e "${DATA}/MEMORY.md" ] then',
        "/usr/local/sbin/fat-seed-data:",
    ),
    ("scripts/fat-health.sh.j2", "\nfi\n", "\n", "/usr/local/bin/fat-health:"),
    (
        "install-runtime.sh.j2",
        'sha512sum "$1"',
        "sha512sum $1",
        "/usr/local/sbin/fat-install-runtime:",
    ),
    ("etc/Caddyfile.j2", "encode zstd gzip", "encode_it zstd gzip", "/etc/caddy/Caddyfile:"),
    (
        "etc/sshd-hardening.conf.j2",
        "MaxAuthTries 3",
        "MaxAuthTries three",
        "/etc/ssh/sshd_config.d/10-fat-hardening.conf:",
    ),
    (
        "etc/nftables.conf.j2",
        "tcp dport { 22, 80, 443 } accept",
        "tcp dport { 22, 80, 443 } acept",
        "/etc/nftables.conf:",
    ),
    (
        "etc/openclaw.json.j2",
        "{{ openclaw_config | tojson(indent=2) }}",
        "{gateway: 1}",
        "invalid JSON",
    ),
]


@pytest.fixture
def broken_templates(tmp_path: Path):
    """A writable copy of the template tree and a function that breaks one file in it."""
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy, ignore=shutil.ignore_patterns("__pycache__"))

    def breaker(name: str, old: str, new: str) -> Path:
        target = copy / name
        text = target.read_text()
        assert old in text, f"{old!r} not in {name}: the test no longer matches the template"
        target.write_text(text.replace(old, new, 1))
        return copy

    return breaker


@pytest.mark.parametrize(
    ("name", "old", "new", "expect"), BREAKAGES, ids=[b[3][:30] for b in BREAKAGES]
)
def test_broken_template_fails_validation(
    broken_templates, host_key, name, old, new, expect
) -> None:
    source = broken_templates(name, old, new)
    spec = make_spec(BASE, host_keys=(host_key,))
    # Files delivered after boot (fat-health) are not in user-data: the files' validator sees them.
    problems = validate_user_data(render_user_data(spec, source))
    problems += validate_files(render_files(spec, source))
    assert problems, "a broken template passed every validator"
    assert any(expect in p for p in problems), problems


def test_undefined_template_variable_is_an_error(broken_templates) -> None:
    source = broken_templates("etc/Caddyfile.j2", "{{ fqdn }}", "{{ fdqn }}")
    with pytest.raises(BadInput, match="fdqn"):
        render_files(make_spec(BASE), source)


def test_non_yaml_and_non_cloud_config_are_reported() -> None:
    assert validate_user_data("users: []\n") == [
        "user-data does not start with a '#cloud-config' line"
    ]
    problems = validate_user_data("#cloud-config\nusers: [\n")
    assert problems and problems[0].startswith("user-data is not YAML")


def test_missing_validator_is_tool_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = render_user_data(make_spec(BASE))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing) as info:
        validate_user_data(text)
    assert "apt-get install" in info.value.one_line()
