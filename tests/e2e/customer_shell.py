"""The customer's shell on their own box, as an attacker: run by the serving e2e on its BYOK box
(provisioned without a customer key), so no extra box is booted.

A customer key added after provisioning creates the `customer` user and lets it in over real
SSH (pinned host key, the config `fatctl ssh --print-config` writes). From that shell the
customer can read and change nothing of root's: not the gateway's keys, not the SSH host
private key, not the skills, the agent's data or the rollout lock (the metadata service is
checked as `nobody` by the caller). Then
the two symlink attacks on `fatctl keys push`, which rewrites the customer's authorized_keys:
`~/.ssh/authorized_keys` linked to the host private key, and `~/.ssh` linked to `/etc/ssh`. A
push must neither hand the customer the key nor touch `/etc/ssh`.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.fixtures.sshd_host import keygen

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"

# Each probe prints a word only when the customer got in where it must not.
PROBES = f"""
id -un; id -Gn
sudo -n true 2>/dev/null && echo BREACH:sudo
cat /etc/openclaw/gateway.env 2>/dev/null && echo BREACH:gateway-env
cat {HOST_KEY} 2>/dev/null && echo BREACH:host-key
cat /etc/rclone/r2.env 2>/dev/null && echo BREACH:r2-env
touch /opt/fat-skills/planted 2>/dev/null && echo BREACH:skills
cat /data/MEMORY.md 2>/dev/null && echo BREACH:data-read
touch /data/planted 2>/dev/null && echo BREACH:data-write
ls /var/lib/openclaw >/dev/null 2>&1 && echo BREACH:state-dir
: > /run/fat/rollout.lock 2>/dev/null && echo BREACH:rollout-lock
echo probes-done
"""

# As root on the box: the host key's fingerprint of content, and whether any file the customer
# owns or can read under their home holds private key material.
INSPECT = f"""
sha256sum {HOST_KEY} | cut -c1-16; stat -c '%a %U' {HOST_KEY} /etc/ssh
grep -rls 'PRIVATE KEY' ~customer 2>/dev/null | sed 's/^/leaked-into: /'
ls -A /etc/ssh | tr '\\n' ' '; echo
"""


def _b64(script: str) -> str:
    return base64.b64encode(script.encode()).decode()


def customer_attacks(run: Callable[..., str], agent: str, tmp_path: Path) -> None:
    """`run(*args, check=...)` is the operator's fatctl; everything else is the customer's."""
    key = tmp_path / "customer"
    keygen(key, "customer@laptop")
    run("keys", "add", "--agent", agent, "--file", f"{key}.pub")  # pushes: creates the user
    config = tmp_path / "ssh_config"
    config.write_text(run("ssh", agent, "--print-config"))

    def as_customer(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-F", str(config), "-l", "customer", "-i", str(key), "-o", "BatchMode=yes",
             agent, f"echo {_b64(script)} | base64 -d | bash"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def as_root(script: str) -> str:
        return run("ssh", agent, "--", f"echo {_b64(script)} | base64 -d | sudo bash")

    shell = as_customer(PROBES)
    assert shell.returncode == 0 and "probes-done" in shell.stdout, shell.stderr
    assert shell.stdout.splitlines()[0] == "customer", shell.stdout
    assert "sudo" not in shell.stdout.splitlines()[1] and "openclaw" not in shell.stdout
    assert "BREACH" not in shell.stdout, shell.stdout
    before = as_root(INSPECT)

    # 1. authorized_keys linked to the host private key, then a push.
    plant = f"cd ~/.ssh && mv authorized_keys ak.saved && ln -s {HOST_KEY} authorized_keys"
    assert as_customer(plant).returncode == 0
    push = run("keys", "push", "--agent", agent, check=None)
    after = as_root(INSPECT)
    assert after == before and "leaked-into" not in after, (push, after)
    assert as_root("readlink ~customer/.ssh/authorized_keys").strip() == HOST_KEY

    # 2. ~/.ssh linked to /etc/ssh (planted as the customer; their login is gone after step 1).
    as_root("runuser -u customer -- sh -c 'cd ~ && rm .ssh/authorized_keys && mv .ssh .ssh.saved "
            "&& ln -s /etc/ssh .ssh'")  # fmt: skip
    run("keys", "push", "--agent", agent, check=None)
    assert as_root(INSPECT) == before, "a push through a linked ~/.ssh changed /etc/ssh"

    # Undone by the customer's own hand, a push brings the customer's login back.
    as_root("runuser -u customer -- sh -c 'cd ~ && rm .ssh && mv .ssh.saved .ssh'")
    run("keys", "push", "--agent", agent)
    assert as_customer("id -un").stdout.strip() == "customer"
