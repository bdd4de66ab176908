"""Kill `fatctl suspend`, `resume` and `archive` (SIGKILL, the real CLI in a subprocess) inside
every write they send to Hetzner or Cloudflare (held by the emulator once applied, its answer
not yet sent), rerun the same command, and check that it converges: the clouds hold exactly
what the state says (suspended: no server, both IPs, both records; resumed: one server on
those IPs; archived: nothing), the op is done, and no lease is left. API only (--no-box,
--no-backup), with the crash harness of tests/reliability.

Figures: runs killed, runs converged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fatctl.services.lifecycle.ops import ops_of
from tests.reliability.checks import agent_row, cloud_of, leases
from tests.reliability.harness import KillAt, Lab, make_lab

OWNER = "crash@example.com"
SUSPEND = ("suspend", "--no-box", "--no-backup", "--yes")
RESUME = ("resume", "--no-box")
ARCHIVE = ("archive", "--no-box", "--no-backup", "--yes")


@pytest.fixture
def lab(tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any) -> Iterator[Lab]:
    made = make_lab(tmp_path, hetzner_emulator, cloudflare_emulator)
    yield made
    made.db.dispose()


def ok(lab: Lab, *args: str) -> None:
    run = lab.fatctl(*args)
    assert run.rc == 0, (args, run.stderr[-400:])


def writes_of(lab: Lab, name: str, prepare: Callable[[str], None], args: tuple[str, ...]) -> dict:
    """How many writes a clean run of `args` sends to each cloud (on a throwaway agent)."""
    prepare(name)
    lab.reset_stats()
    ok(lab, args[0], name, *args[1:])
    return {cloud: lab.mutating_calls(cloud) for cloud in ("hetzner", "cloudflare")}


def suspended(lab: Lab, name: str) -> list[str]:
    seen = cloud_of(lab, name)
    row = agent_row(lab, name)
    wrong = []
    if seen["servers"] or seen["firewalls"]:
        wrong.append(f"{len(seen['servers'])} servers, {len(seen['firewalls'])} firewalls left")
    if sorted(ip["ip"] for ip in seen["primary_ips"] if ip["type"] == "ipv4") != [row.ipv4]:
        wrong.append("the kept IPv4 is not the recorded one")
    if len(seen["primary_ips"]) != 2 or len(seen["a"]) != 1 or len(seen["aaaa"]) != 1:
        wrong.append(f"{len(seen['primary_ips'])} IPs, {len(seen['a'])}+{len(seen['aaaa'])} DNS")
    if row.state != "suspended":
        wrong.append(f"state {row.state}")
    return wrong


def resumed(lab: Lab, name: str) -> list[str]:
    seen = cloud_of(lab, name)
    row = agent_row(lab, name)
    wrong = []
    if len(seen["servers"]) != 1 or len(seen["firewalls"]) != 1:
        wrong.append(f"{len(seen['servers'])} servers, {len(seen['firewalls'])} firewalls")
    elif {ip["assignee_id"] for ip in seen["primary_ips"]} != {seen["servers"][0]["id"]}:
        wrong.append("the kept IPs are not on the server")
    if len(seen["primary_ips"]) != 2 or row.suspended_at is not None:
        wrong.append(f"{len(seen['primary_ips'])} IPs, suspended_at {row.suspended_at}")
    return wrong


def archived(lab: Lab, name: str) -> list[str]:
    seen = cloud_of(lab, name)
    left = {kind: len(items) for kind, items in seen.items() if items}
    state = agent_row(lab, name).state
    return ([f"left at the clouds: {left}"] if left else []) + (
        [f"state {state}"] if state != "archived" else []
    )


def crash_each_write(
    lab: Lab,
    args: tuple[str, ...],
    prepare: Callable[[str], None],
    check: Callable[[Lab, str], list[str]],
    figure: Callable[..., None],
) -> None:
    writes = writes_of(lab, f"{args[0]}-ref", prepare, args)
    failures, killed, runs = [], 0, 0
    for cloud, n in writes.items():
        for k in range(1, n + 1):
            name = f"{args[0][:3]}-{cloud[:2]}-{k:02d}"
            prepare(name)
            run = lab.fatctl(args[0], name, *args[1:], kill=KillAt(cloud=cloud, nth=k))
            killed += run.killed
            again = lab.fatctl(args[0], name, *args[1:])
            runs += 1
            wrong = check(lab, name)
            if again.rc != 0:
                wrong.append(f"rerun exit {again.rc}: {again.stderr.strip()[-300:]}")
            if [(o.kind, o.state) for o in ops_of(lab.db, name)][-1:] != [(args[0], "done")]:
                wrong.append(f"ops {[(o.kind, o.state) for o in ops_of(lab.db, name)]}")
            failures += [f"{name} ({cloud} write {k}): {w}" for w in wrong]
    assert not leases(lab), leases(lab)
    figure(f"{args[0]}: runs killed inside a write", killed)
    figure(f"{args[0]}: reruns converged", runs - len({f.split(" ")[0] for f in failures}))
    assert runs == sum(writes.values()) and killed == runs
    assert not failures, "\n".join(failures)


def test_suspend_killed_inside_every_write_converges(lab: Lab, figure: Any) -> None:
    def prepare(name: str) -> None:
        ok(lab, "provision", name, "--owner", OWNER, "--no-box")

    crash_each_write(lab, SUSPEND, prepare, suspended, figure)


def test_resume_killed_inside_every_write_converges(lab: Lab, figure: Any) -> None:
    def prepare(name: str) -> None:
        ok(lab, "provision", name, "--owner", OWNER, "--no-box")
        ok(lab, SUSPEND[0], name, *SUSPEND[1:])

    crash_each_write(lab, RESUME, prepare, resumed, figure)


def test_archive_killed_inside_every_write_converges(lab: Lab, figure: Any) -> None:
    def prepare(name: str) -> None:
        ok(lab, "provision", name, "--owner", OWNER, "--no-box")

    crash_each_write(lab, ARCHIVE, prepare, archived, figure)
