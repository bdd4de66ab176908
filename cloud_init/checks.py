"""Validators for the files a box gets: shellcheck, systemd-analyze, caddy, sshd, nft, JSON.

Each check takes `{box path: content}` and returns problem lines ("<path>: <what>"); an empty
list means the real tool accepted everything. Work happens in a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cloud_init.tools import lines, require, run_tool

UNIT_DIR = "/etc/systemd/system/"
CADDYFILE = "/etc/caddy/Caddyfile"
SSHD_DIR = "/etc/ssh/sshd_config"
NFTABLES = "/etc/nftables.conf"
_SHELLS = ("sh", "bash", "dash")
_EXEC = re.compile(r"^Exec\w+=[-@:+!]*(/[^\s]+)", re.MULTILINE)
_HOST_UNITS = Path("/usr/lib/systemd/system")


def is_shell_script(content: str) -> bool:
    first = content.split("\n", 1)[0]
    if not first.startswith("#!"):
        return False
    words = first[2:].split()
    interp = words[-1] if words and words[0].endswith("/env") else (words[0] if words else "")
    return os.path.basename(interp) in _SHELLS


def check_scripts(files: Mapping[str, str]) -> list[str]:
    """shellcheck (every severity) on each shell script; problems name the box path."""
    scripts = {p: c for p, c in files.items() if is_shell_script(c)}
    if not scripts:
        return []
    with tempfile.TemporaryDirectory(prefix="fat-shellcheck-") as tmp:
        names = {}
        for index, (path, content) in enumerate(sorted(scripts.items())):
            name = f"{index:02d}-{os.path.basename(path)}"
            Path(tmp, name).write_text(content, encoding="utf-8")
            names[name] = path
        result = run_tool(["shellcheck", "--norc", "-f", "gcc", *sorted(names)], cwd=tmp)
    problems = []
    for line in lines(result.output, limit=200):
        name, _, rest = line.partition(":")
        problems.append(f"{names.get(name, name)}:{rest}")
    if result.returncode != 0 and not problems:
        problems.append(f"shellcheck failed with exit code {result.returncode}")
    return problems


def check_units(files: Mapping[str, str]) -> list[str]:
    """`systemd-analyze verify` on every unit, inside a throw-away root.

    The units name programs that exist only on a box (/opt/openclaw/current/bin/openclaw ...),
    and verify rejects a unit whose ExecStart is missing. So the check runs with --root on a
    temporary tree holding the host's stock units (for targets like network-online.target),
    our units, and an executable stub at every Exec path: it verifies syntax, directives and
    dependencies. That the programs really exist is the first-boot test's job.
    verify exits 0 on unknown keys and bad values, so any line it prints is a problem.
    """
    units = {p: c for p, c in files.items() if p.startswith(UNIT_DIR)}
    if not units:
        return []
    with tempfile.TemporaryDirectory(prefix="fat-units-") as tmp:
        root = Path(tmp)
        if _HOST_UNITS.is_dir():
            shutil.copytree(_HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
        for path, content in units.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            for program in _EXEC.findall(content):
                _stub(root / program.lstrip("/"))
        rel = sorted(os.path.relpath(root / p.lstrip("/"), tmp) for p in units)
        result = run_tool(["systemd-analyze", "verify", f"--root={tmp}", "--man=no", *rel], cwd=tmp)
    problems = [line.replace(f"{tmp}/", "/") for line in lines(result.output, limit=100)]
    if result.returncode != 0 and not problems:
        problems.append(f"systemd-analyze verify failed with exit code {result.returncode}")
    return problems


def _stub(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    path.chmod(0o755)


def check_caddyfile(files: Mapping[str, str]) -> list[str]:
    """`caddy validate` (adapts the Caddyfile and provisions every module) with a private HOME."""
    content = files.get(CADDYFILE)
    if content is None:
        return []
    with tempfile.TemporaryDirectory(prefix="fat-caddy-") as tmp:
        Path(tmp, "Caddyfile").write_text(content, encoding="utf-8")
        env = {"HOME": tmp, "XDG_DATA_HOME": tmp, "XDG_CONFIG_HOME": tmp}
        argv = ["caddy", "validate", "--config", "Caddyfile", "--adapter", "caddyfile"]
        result = run_tool(argv, cwd=tmp, env=env)
    if result.returncode == 0:
        return []
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error")]
    return lines("\n".join(errors) or result.output, prefix=f"{CADDYFILE}: ", limit=5)


def check_sshd(files: Mapping[str, str]) -> list[str]:
    """`sshd -t` on each sshd drop-in, with a throw-away host key.

    As root, sshd -t insists on its privilege-separation directory; where the host has none
    (no sshd ever ran), the check gets a private /run in its own mount namespace.
    """
    problems = []
    for path, content in sorted(files.items()):
        if not path.startswith(SSHD_DIR):
            continue
        with tempfile.TemporaryDirectory(prefix="fat-sshd-") as tmp:
            Path(tmp, "sshd_config").write_text(content, encoding="utf-8")
            run_tool(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{tmp}/key"])
            argv = [require("sshd"), "-t", "-f", f"{tmp}/sshd_config", "-h", f"{tmp}/key"]
            if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
                setup = 'mount -t tmpfs tmpfs /run && mkdir -m 0755 /run/sshd && exec "$@"'
                argv = ["unshare", "--mount", "sh", "-c", setup, "sh", *argv]
            result = run_tool(argv)
        if result.returncode != 0:
            problems += lines(result.output.replace(f"{tmp}/sshd_config", ""), prefix=f"{path}: ")
    return problems


def check_nftables(files: Mapping[str, str]) -> list[str]:
    """`nft -c` (parse and check against the kernel, commit nothing) on the firewall rules.

    Run in a fresh network namespace, so even a mistaken commit could never touch the host's
    own ruleset; without root, a user namespace grants the capability nft needs.
    """
    content = files.get(NFTABLES)
    if content is None:
        return []
    with tempfile.TemporaryDirectory(prefix="fat-nft-") as tmp:
        Path(tmp, "nftables.conf").write_text(content, encoding="utf-8")
        isolate = ["--net"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--net"]
        nft = require("nft")
        result = run_tool(["unshare", *isolate, nft, "-c", "-f", f"{tmp}/nftables.conf"])
    if result.returncode == 0:
        return []
    text = result.output.replace(f"{tmp}/nftables.conf", "")
    errors = [ln for ln in text.splitlines() if "Error" in ln] or text.splitlines()
    return lines("\n".join(errors), prefix=f"{NFTABLES}: ", limit=10)


def check_json(files: Mapping[str, str]) -> list[str]:
    problems = []
    for path, content in sorted(files.items()):
        if path.endswith(".json"):
            try:
                json.loads(content)
            except ValueError as exc:
                problems.append(f"{path}: invalid JSON: {exc}")
    return problems


def check_files(files: Mapping[str, str]) -> list[str]:
    """Every check on one set of box files (the external tools run concurrently)."""
    checks = (check_scripts, check_units, check_caddyfile, check_sshd, check_nftables, check_json)
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = [pool.submit(check, files) for check in checks]
        return [problem for future in futures for problem in future.result()]
