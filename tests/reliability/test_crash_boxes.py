"""The box steps under kills, on the real sandbox (root): one agent provisioned by the CLI onto
a real nspawn box (real cloud-init, sshd, gateway, Caddy), killed as each box step starts (SSH,
cloud-init, secrets, health gate) and inside the issue of its R2 credentials, rerun each time;
the last run ends `ready` with one of everything and the secrets (gateway token, R2
credentials) as they were before the kills.

Then `fatctl move` of the same agent to hel1: first killed once its replacement serves and
given up (`--abandon`: the old box serves again, the replacement is gone), then killed as each
of its box steps starts (the backup on the old box, cloud-init, the restore and the gateway's
start on the new one, the health gate, the HTTPS check) and as the old box is retired: the
last rerun ends `ready` in hel1 with exactly one server, new IPs, DNS at them, the old IPs
released and the secrets kept.
(Every cloud write of a move is killed on the emulators in tests/integration/lifecycle.)

One agent for all the kills: booting a box per kill would take minutes each on this machine."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import fatctl_env
from tests.reliability.checks import (
    Tally,
    cloud_of,
    name_of,
    provisioned,
    secrets_of,
    servers_where,
    strays,
)
from tests.reliability.harness import KillAt, Lab

NAME = "crash-box"
# Each run is killed at the next of these: as a box step starts, or (the R2 one) inside the
# secrets step, once Cloudflare has issued the agent's R2 credentials but before fatctl stored
# or delivered them.
KILLS = (
    KillAt(on="step.start:ssh"),
    KillAt(on="step.start:cloud_init"),
    KillAt(on="step.start:secrets"),
    KillAt(cloud="cloudflare", nth=1, match="^POST .*/r2/temp-access-credentials$"),
    KillAt(on="step.start:health"),
)
# The move's box steps (its own and the provision flow's on the new box), then the retirement.
MOVE_KILLS = tuple(
    KillAt(on=f"step.start:{step}")
    for step in ("backup", "cloud_init", "restore", "start", "health", "https", "retire")
)


class Admin:
    """An emulator process seen through its admin endpoints (inventory only)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def inventory(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/inventory", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def records(self) -> list[dict[str, Any]]:
        return list(self.inventory()["dns_records"])

    def set_faults(self, **knobs: Any) -> None:
        req = urllib.request.Request(f"{self.url}/faults", data=json.dumps(knobs).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        urllib.request.urlopen(req, timeout=10).close()


@pytest.fixture
def box_lab(sandbox: dict[str, Any], tmp_path: Path) -> Iterator[Lab]:
    admin = {name: Admin(str(url)) for name, url in sandbox["admin"].items()}
    lab = _lab(tmp_path, sandbox["env"], admin["hetzner"], admin["cloudflare"])
    yield lab
    lab.db.dispose()


def _lab(tmp: Path, sandbox: dict[str, str], hetzner: Admin, cloudflare: Admin) -> Lab:
    from fatctl.config import load_settings
    from fatctl.domain import KeyRole
    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.sensitive import Sensitive
    from fatctl.services.agents.keys import add_key
    from fatctl.state import migrate
    from fatctl.state.db import make_engine

    master = generate_master_key()
    settings = load_settings({**sandbox, "FATCTL_DATA_DIR": str(tmp)})
    migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    pub = Path(settings.operator_key_file + ".pub").read_text()
    add_key(db, role=KeyRole.OPERATOR, public_key=pub, label="op", agent=None, actor="test")
    env = fatctl_env(
        sandbox,
        FATCTL_DATA_DIR=str(tmp),
        FATCTL_DATABASE_URL=settings.database_url,
        FATCTL_MASTER_KEY=master,
    )
    ring = keyring_from(Sensitive(master))
    return Lab(tmp, hetzner, cloudflare, db, ring, settings, env)


def test_box_steps_killed_one_by_one_end_ready(box_lab: Lab, figure: Callable[..., None]) -> None:
    lab, tally = box_lab, Tally({NAME})
    args = ("provision", NAME, "--owner", "crash@example.com")
    before: dict[str, str] = {}
    for kill in KILLS:
        step = kill.label()
        run = lab.fatctl(*args, kill=kill)
        assert run.killed, (step, run.steps(), run.stderr[-500:])
        tally.killed += 1
        now = secrets_of(lab, NAME)
        changed = [k for k in before if before[k] != now.get(k)]
        assert not changed, f"a rerun killed at {step} changed secrets {changed}"
        before = now
    done = lab.fatctl(*args)
    verdict = provisioned(lab, NAME, before, end=("ready", "ready"))
    verdict.expect(done.rc == 0, f"last run exit {done.rc}: {done.stderr.strip()[-300:]}")
    verdict.expect("step.done:health" in done.steps(), f"health not gated: {done.steps()}")
    tally.add(NAME, "each box step in turn", False, verdict)
    tally.absorb(strays(lab, tally.agents))
    tally.report(figure, "provision on a real box")
    assert not tally.failures, "\n".join(tally.failures)

    _move_killed_at_each_box_step(lab, before, figure)


def _move_killed_at_each_box_step(
    lab: Lab, before: dict[str, str], figure: Callable[..., None]
) -> None:
    from fatctl.services.lifecycle.ops import ops_of

    tally = Tally({NAME})
    old = cloud_of(lab, NAME)
    old_ips = {ip["ip"] for ip in old["primary_ips"]}
    args = ("move", NAME, "--location", "hel1", "--yes")
    _move_given_up(lab, args, before, old_ips, tally, figure)
    for kill in MOVE_KILLS:
        run = lab.fatctl(*args, kill=kill)
        assert run.killed, (kill.label(), run.steps(), run.stderr[-500:])
        tally.killed += 1
    t0 = time.monotonic()
    done = lab.fatctl(*args)
    figure("the move's last rerun (retire, promote, state)", time.monotonic() - t0, "s")
    verdict = provisioned(lab, NAME, before, end=("ready", "ready"))
    verdict.expect(done.rc == 0, f"last move exit {done.rc}: {done.stderr.strip()[-300:]}")
    found = cloud_of(lab, NAME)
    servers = servers_where(found)
    verdict.expect(servers == [(NAME, "hel1", None)], f"servers after the move: {servers}")
    new_ips = {ip["ip"] for ip in found["primary_ips"]}
    verdict.expect(not new_ips & old_ips, f"old IPs kept: {new_ips & old_ips}")
    verdict.expect({name_of(ip["location"]) for ip in found["primary_ips"]} == {"hel1"},
                   "primary IPs outside hel1")  # fmt: skip
    ops = [(o.kind, o.state) for o in ops_of(lab.db, NAME)]
    verdict.expect(ops == [("move", "abandoned"), ("move", "done")], f"lifecycle ops: {ops}")
    tally.add(NAME, "each box step of move in turn", False, verdict)
    tally.absorb(strays(lab, tally.agents))
    tally.report(figure, "move on real boxes")
    assert not tally.failures, "\n".join(tally.failures)


def _move_given_up(
    lab: Lab,
    args: tuple[str, ...],
    before: dict[str, str],
    old_ips: set[str],
    tally: Tally,
    figure: Callable[..., None],
) -> None:
    """A move killed once its replacement serves, then given up (`--abandon`): the old box,
    whose gateway the move's backup stopped and kept stopped, serves again behind the health
    gate, and the replacement is gone."""
    from fatctl.services.lifecycle.ops import ops_of

    left = lab.fatctl(*args, kill=KillAt(on="step.start:health"))
    assert left.killed, (left.steps(), left.stderr[-500:])
    t0 = time.monotonic()
    given_up = lab.fatctl("move", NAME, "--abandon", "--yes")
    figure("move --abandon on a real box (DNS, replacement deleted, old gateway up, health)",
           time.monotonic() - t0, "s")  # fmt: skip
    verdict = provisioned(lab, NAME, before, end=("ready", "ready"))
    verdict.expect(given_up.rc == 0, f"abandon exit {given_up.rc}: {given_up.stderr[-300:]}")
    verdict.expect("step.done:start" in given_up.steps(), f"not started: {given_up.steps()}")
    found = cloud_of(lab, NAME)
    servers = servers_where(found)
    verdict.expect(servers == [(NAME, "fsn1", None)], f"servers after abandon: {servers}")
    kept = {ip["ip"] for ip in found["primary_ips"]}
    verdict.expect(kept == old_ips, f"IPs after abandon: {kept} (were {old_ips})")
    ops = [(o.kind, o.state) for o in ops_of(lab.db, NAME)]
    verdict.expect(ops == [("move", "abandoned")], f"lifecycle ops: {ops}")
    tally.add(NAME, "a move given up", True, verdict)
