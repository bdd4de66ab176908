"""Smoke tests of bench/rollout.py's Ansible side: the generated project is valid and does the
same work as fatctl. `ansible-playbook --syntax-check` and a real run on two real sshd hosts
(skipped with a reason when ansible or root is missing). No timings are asserted here.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import _ansible
from bench._work import steps
from fatctl.remote.target import Target
from tests.integration.rollout import harness
from tests.integration.rollout.harness import NEW, OLD

needs_ansible = pytest.mark.skipif(
    not _ansible.available(), reason="ansible-playbook missing (apt-get install -y ansible)"
)


class _Loader(yaml.SafeLoader):
    pass


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, str]:
    assert isinstance(node, yaml.ScalarNode)
    return ("unsafe", str(loader.construct_scalar(node)))


_Loader.add_constructor("!unsafe", _unsafe)


def _targets() -> list[Target]:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd3ulTUBdLmvnCQRSc1TbKQrgd8ahW0mrpMkdQF2JN7 c"
    return [Target(f"box{i}", f"127.0.10.{i}", 2222, "fto1", (key,), "/tmp/k") for i in (1, 2)]


def _project(root: Path) -> _ansible.Project:
    layout = harness.layout("fto1")
    work = steps(layout, NEW, OLD, 0.5, 3)
    play = _ansible.playbook(work, layout, NEW, OLD, 10, "free")
    return _ansible.write_project(root, root / "cp", _targets(), play, 10)


def test_playbook_runs_fatctls_own_commands_in_order(tmp_path: Path) -> None:
    project = _project(tmp_path)
    plays: list[dict[str, Any]] = yaml.load((project.root / "playbook.yml").read_text(), _Loader)
    (play,) = plays
    assert (play["serial"], play["strategy"], play["gather_facts"]) == (10, "free", False)
    block = play["tasks"][0]["block"]
    work = steps(harness.layout("fto1"), NEW, OLD, 0.5, 3)
    assert [t["name"] for t in block] == [s.name for s in work]
    for task, step in zip(block, work, strict=True):
        expected = f"sleep 0.5; {step.command}" if step.pause_before_s else step.command
        assert task["ansible.builtin.shell"]["cmd"] == ("unsafe", expected)
    rescue = [t["name"] for t in play["tasks"][0]["rescue"]]
    assert rescue == ["switch back", "restart old", "report"]


def test_inventory_and_known_hosts_pin_each_host(tmp_path: Path) -> None:
    project = _project(tmp_path)
    hosts = yaml.safe_load((project.root / "inventory.yml").read_text())["all"]["hosts"]
    assert hosts["box2"]["ansible_host"] == "127.0.10.2"
    assert hosts["box2"]["ansible_port"] == 2222
    lines = (project.root / "known_hosts").read_text().splitlines()
    assert lines[0].startswith("[127.0.10.1]:2222 ssh-ed25519 AAAA")
    assert len(lines) == 2 and not lines[0].endswith(" c")  # comment dropped
    cfg = (project.root / "ansible.cfg").read_text()
    assert "forks = 10" in cfg and "StrictHostKeyChecking=yes" in cfg and "pipelining = True" in cfg


@needs_ansible
def test_playbook_passes_ansible_syntax_check(tmp_path: Path) -> None:
    project = _project(tmp_path)
    for check in ("--syntax-check", "--list-tasks"):
        done = subprocess.run(
            [_ansible.ANSIBLE_PLAYBOOK, str(project.root / "playbook.yml"), check],
            env=project.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "test boot" in done.stdout and "health 2" in done.stdout


@needs_ansible
def test_playbook_upgrades_real_sshd_hosts_like_fatctl() -> None:
    """The bench's Ansible run and direct run do the real work on real sshd hosts."""
    from bench._hosts import bench_fleet, reset, run_direct, upgraded
    from bench._work import as_script

    with bench_fleet(2) as fleet:
        work = steps(fleet.layout, NEW, OLD, 0.2, 3)
        play = _ansible.playbook(work, fleet.layout, NEW, OLD, 2, "free")
        targets = [h.target() for h in fleet.hosts]
        control = Path(tempfile.mkdtemp(prefix="fa", dir="/tmp"))
        try:
            project = _ansible.write_project(fleet.workdir / "ans", control, targets, play, 2)
            _, code = _ansible.run_playbook(project, fleet.workdir / "ans.log")
            _ansible.stop_masters(project, targets)
        finally:
            shutil.rmtree(control, ignore_errors=True)
        assert code == 0, (fleet.workdir / "ans.log").read_text()[-2000:]
        assert upgraded(fleet.hosts) == 2
        assert [harness.events(h) for h in fleet.hosts] == [
            [f"start {OLD}", f"install {NEW}", f"start {NEW}"]
        ] * 2
        reset(fleet, fleet.hosts)
        assert upgraded(fleet.hosts) == 0
        assert run_direct(fleet.hosts[0], as_script(work)) > 0.2  # includes the gate's pause
        assert harness.current(fleet.hosts[0]) == NEW and harness.current(fleet.hosts[1]) == OLD
