"""Ansible side of the rollout bench: a generated project (config, inventory, pinned known_hosts,
playbook) that does the same per-host work as fatctl, and a runner for `ansible-playbook`.

The renderers are pure (targets and steps in, text out) so a test can check them with
`ansible-playbook --syntax-check`. Configured as a careful operator would for speed: no fact
gathering, SSH pipelining, ControlMaster/ControlPersist, `forks` = the rollout's parallelism,
`serial` = its batch (waves), and `strategy: free` inside a wave (see `playbook`). Host keys are
pinned (StrictHostKeyChecking=yes with a generated known_hosts), as fatctl pins them.
The shell commands are fatctl's own builders' output, marked `!unsafe` so Jinja leaves them be.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench._work import Step
from fatctl.remote.commands.upgrade import BoxLayout, restart, switch
from fatctl.remote.target import Target

ANSIBLE_PLAYBOOK = "ansible-playbook"


class _Unsafe(str):
    """A string Ansible must not template (YAML tag `!unsafe`)."""


def _unsafe_representer(dumper: yaml.SafeDumper, data: _Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(data), style='"')


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Unsafe, _unsafe_representer)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=10_000)


def known_hosts(targets: Sequence[Target]) -> str:
    """OpenSSH known_hosts lines (`[host]:port type blob`) for every pinned key."""
    lines = []
    for t in targets:
        name = t.host if t.port == 22 else f"[{t.host}]:{t.port}"
        lines += [f"{name} {' '.join(key.split()[:2])}" for key in t.host_keys]
    return "\n".join(lines) + "\n"


def inventory(targets: Sequence[Target]) -> str:
    hosts = {
        t.name: {
            "ansible_host": t.host,
            "ansible_port": t.port,
            "ansible_user": t.user,
            "ansible_ssh_private_key_file": t.key_file,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        for t in targets
    }
    return _dump({"all": {"hosts": hosts}})


def config(project: Path, control_dir: Path, forks: int) -> str:
    """ansible.cfg: fast-but-safe settings; connections persist within one playbook run.

    `control_dir` must be short: a socket path is limited to 108 bytes and ssh appends
    40 hex digits plus a random suffix while creating it.
    """
    ssh_args = " ".join(
        [
            "-o ControlMaster=auto -o ControlPersist=60s",
            f"-o UserKnownHostsFile={project / 'known_hosts'}",
            "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
            "-o PreferredAuthentications=publickey",
        ]
    )
    return "\n".join(
        [
            "[defaults]",
            f"inventory = {project / 'inventory.yml'}",
            f"forks = {forks}",
            "host_key_checking = True",
            "gathering = explicit",
            "retry_files_enabled = False",
            "timeout = 30",
            f"local_tmp = {project / 'tmp'}",
            "[ssh_connection]",
            "pipelining = True",
            f"ssh_args = {ssh_args}",
            f"control_path_dir = {control_dir}",
            "control_path = %(directory)s/%%C",
            "",
        ]
    )


def _health_check(register: str, version: str) -> str:
    # fat-health's report is the first line; a prune riding along prints after it.
    report = f"({register}.stdout_lines | first | default('{{}}') | from_json)"
    return f"{register}.rc != 0 or {report}.runtime_version | default('') != '{version}'"


def _task(step: Step, version: str) -> dict[str, Any]:
    command = step.command
    if step.pause_before_s:  # the gate's wait, on the box: no extra task round trip for Ansible
        command = f"sleep {step.pause_before_s:g}; {command}"
    task: dict[str, Any] = {"name": step.name, "ansible.builtin.shell": {"cmd": _Unsafe(command)}}
    if step.name.startswith("health"):
        register = re.sub(r"\W+", "_", step.name)
        task |= {"register": register, "failed_when": _health_check(register, version)}
    if step.name == "read current" or step.name.startswith("health"):
        task["changed_when"] = False
    return task


def playbook(
    work: Sequence[Step], layout: BoxLayout, version: str, previous: str, batch: int, strategy: str
) -> str:
    """One play: waves of `batch` hosts (`serial`), the steps in a block, rollback in rescue.

    `strategy: free` is the fair match: fatctl waits for a whole wave, but within it each host
    runs its steps at its own pace; `linear` would add a barrier after every task.
    """
    rescue = [
        {
            "name": "switch back",
            "ansible.builtin.shell": {"cmd": _Unsafe(switch(layout, previous))},
        },
        {"name": "restart old", "ansible.builtin.shell": {"cmd": _Unsafe(restart(layout))}},
        {"name": "report", "ansible.builtin.fail": {"msg": f"rolled back to {previous}"}},
    ]
    play = {
        "name": f"upgrade runtime to {version}",
        "hosts": "all",
        "gather_facts": False,
        "serial": batch,
        "strategy": strategy,
        "tasks": [
            {"name": "upgrade", "block": [_task(s, version) for s in work], "rescue": rescue}
        ],
    }
    return _dump([play])


@dataclass(frozen=True)
class Project:
    """A directory holding a complete Ansible project for one fleet."""

    root: Path
    control_dir: Path

    @property
    def env(self) -> dict[str, str]:
        import os

        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(self.root / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOME": str(self.root / "home"),
        }


def write_project(
    root: Path, control_dir: Path, targets: Sequence[Target], play: str, forks: int
) -> Project:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("tmp", "home"):
        (root / sub).mkdir(mode=0o700, exist_ok=True)
    (root / "ansible.cfg").write_text(config(root, control_dir, forks))
    (root / "inventory.yml").write_text(inventory(targets))
    (root / "known_hosts").write_text(known_hosts(targets))
    (root / "playbook.yml").write_text(play)
    return Project(root, control_dir)


def run_playbook(project: Project, log: Path, *extra: str) -> tuple[float, int]:
    """Run the playbook; (wall seconds, exit code). Output goes to `log`."""
    argv = [ANSIBLE_PLAYBOOK, str(project.root / "playbook.yml"), *extra]
    start = time.monotonic()
    with open(log, "w") as out:
        code = subprocess.run(
            argv, env=project.env, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    return time.monotonic() - start, code


def stop_masters(project: Project, targets: Sequence[Target]) -> None:
    """Close the ControlPersist masters the run left behind, so the next run starts cold too."""
    cfg = project.control_dir / "%C"
    for t in targets:
        subprocess.run(
            [
                "ssh",
                "-o",
                f"ControlPath={cfg}",
                "-O",
                "exit",
                "-p",
                str(t.port),
                f"{t.user}@{t.host}",
            ],
            capture_output=True,
            timeout=10,
        )


def available() -> bool:
    return shutil.which(ANSIBLE_PLAYBOOK) is not None
