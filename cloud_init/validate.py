"""Validation of rendered user-data with the real tools, returning a list of problems.

`cloud-init schema --config-file` (judged by its exit code) checks the document's shape;
cloud-init 22.4 ignores unknown top-level keys, so those are checked against an allow-list of
real module keys; then every file the document writes and its runcmd go through shellcheck,
`systemd-analyze verify`, `caddy validate`, `sshd -t` and `nft -c` (see `cloud_init.checks`).
"""

from __future__ import annotations

import base64
import gzip
import shlex
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from cloud_init.checks import check_files, check_scripts
from cloud_init.files import RenderedFile
from cloud_init.tools import lines, run_tool

# Top-level keys of cloud-init 22.4's module schema (plus the merge directives the user-data
# handler reads); a test checks the list against the installed cloud-init's schema.
KNOWN_KEYS = frozenset(
    """
    allow_public_ssh_keys ansible apk_repos apt apt_pipelining apt_reboot_if_required
    apt_update apt_upgrade authkey_hash autoinstall bootcmd byobu_by_default ca-certs
    ca_certs chef chpasswd device_aliases disable_ec2_metadata disable_root
    disable_root_opts disk_setup drivers fan final_message fqdn fs_setup groups growpart
    grub-dpkg grub_dpkg hostname keyboard landscape locale locale_configfile lxd
    manage_etc_hosts manage_resolv_conf mcollective migrate mount_default_fields mounts
    no_ssh_fingerprints ntp package_reboot_if_required package_update package_upgrade
    packages password phone_home power_state prefer_fqdn_over_hostname preserve_hostname
    puppet random_seed resize_rootfs resolv_conf rh_subscription rsyslog runcmd salt_minion
    snap spacewalk ssh ssh_authorized_keys ssh_deletekeys ssh_fp_console_blacklist
    ssh_genkeytypes ssh_import_id ssh_key_console_blacklist ssh_keys ssh_publish_hostkeys
    ssh_pwauth ssh_quiet_keygen swap timezone ubuntu_advantage updates user users
    vendor_data wireguard write_files yum_repo_dir yum_repos zypper merge_how merge_type
    """.split()  # noqa: SIM905 - a word list reads better than 88 quoted strings
)


def validate_user_data(text: str) -> list[str]:
    """Every problem the real validators find in `text`; empty when the user-data is good."""
    if not text.startswith("#cloud-config\n"):
        return ["user-data does not start with a '#cloud-config' line"]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"user-data is not YAML: {' '.join(str(exc).split())}"]
    if not isinstance(doc, dict):
        return ["user-data is not a YAML mapping"]
    problems = unknown_keys(doc)
    files = written_files(doc, problems)
    scripts = {"runcmd": runcmd_script(doc.get("runcmd") or [])}
    # The tools are independent processes: run them side by side (provisioning waits on this).
    with ThreadPoolExecutor(max_workers=3) as pool:
        schema = pool.submit(cloud_init_schema, text)
        checked = pool.submit(check_files, files)
        runcmd = pool.submit(check_scripts, scripts)
        return problems + schema.result() + checked.result() + runcmd.result()


def validate_files(files: dict[str, RenderedFile]) -> list[str]:
    """The file checks alone, for `render_files` output applied without cloud-init."""
    return check_files({path: f.content for path, f in files.items()})


def validate_script(text: str, name: str = "script") -> list[str]:
    """shellcheck on one script (the install script, as the image builders use it)."""
    return check_scripts({name: text})


def unknown_keys(doc: dict[str, Any]) -> list[str]:
    return [f"unknown top-level key {key!r}" for key in sorted(set(doc) - KNOWN_KEYS)]


def cloud_init_schema(text: str) -> list[str]:
    """`cloud-init schema --config-file`: a non-zero exit code is the verdict."""
    with tempfile.TemporaryDirectory(prefix="fat-schema-") as tmp:
        path = Path(tmp, "user-data")
        path.write_text(text, encoding="utf-8")
        result = run_tool(["cloud-init", "schema", "--config-file", str(path)])
    if result.returncode == 0:
        return []
    found = lines(result.output.replace(str(path), "user-data"), prefix="cloud-init schema: ")
    return found or [f"cloud-init schema failed with exit code {result.returncode}"]


def written_files(doc: dict[str, Any], problems: list[str]) -> dict[str, str]:
    """write_files as {path: decoded content}; undecodable entries become problems."""
    out: dict[str, str] = {}
    for entry in doc.get("write_files") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue  # the schema check reports the shape
        try:
            out[entry["path"]] = _decode(entry.get("content", ""), entry.get("encoding", "text"))
        except (ValueError, OSError) as exc:
            problems.append(f"{entry['path']}: cannot decode content: {exc}")
    return out


def _decode(content: Any, encoding: str) -> str:
    raw = content if isinstance(content, str) else str(content)
    if encoding in ("b64", "base64"):
        return base64.b64decode(raw).decode("utf-8")
    if encoding in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
        return gzip.decompress(base64.b64decode(raw)).decode("utf-8")
    return raw


def runcmd_script(runcmd: list[Any]) -> str:
    """runcmd as cloud-init runs it: one `sh` script, lists quoted word by word."""
    body = [
        shlex.join(str(w) for w in item) if isinstance(item, list) else str(item) for item in runcmd
    ]
    return "#!/bin/sh\n" + "\n".join(body) + "\n"
