"""`fatctl move` keeps the customer, end to end on real nspawn boxes with the real OpenClaw
gateway (issue 18). A managed agent answers its Telegram sender through the sandbox's model
stand-in; `fatctl move --location hel1` backs its state up with the old gateway stopped (and
kept stopped: one bot never serves from two boxes), makes a second box in hel1 on new primary
IPs, restores the backup there before its gateway first starts, passes the health gate, points
DNS at the new IPs, checks HTTPS, and only then deletes the old server and releases its IPs.
The conversation goes on with the turns from before.

Prints: move end to end.

Needs root and the sandbox's boxes (slow, two boxes at once for a while):
`python3 -m pytest -q tests/e2e/test_move.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fatctl.sandbox.world import client as world
from tests.e2e.test_agent_serves import _plane, _round_trip, _servers
from tests.e2e.test_lifecycle import SENDER, _addresses, _remembers, _result
from tests.e2e.test_provision_e2e import _admin

pytestmark = [pytest.mark.root, pytest.mark.slow]

AGENT, OWNER = "cust-move", "move@example.com"


def test_move_to_another_location_brings_the_conversation_back(
    sandbox: dict[str, Any], tmp_path: Path, figure: Callable[..., None]
) -> None:
    plane = _plane(sandbox, tmp_path)
    admin = world.admin_url(sandbox["state"])
    plane.run("secrets", "set", "fireworks-api-key", stdin=world.issue_model_key(admin))
    bot, bot_id = world.issue_bot_token(admin)
    plane.run("agents", "create", AGENT, "--owner", OWNER)
    plane.run("channels", "add", AGENT, "telegram", stdin=bot + "\n")
    plane.run("senders", "add", AGENT, str(SENDER))
    plane.run("provision", AGENT, "--owner", OWNER)
    for turn in ("remember the green gate", "and the silver coin", "before the move"):
        _round_trip(admin, bot_id, SENDER, turn)
    (before,) = [s for s in _servers(sandbox) if s["name"] == AGENT]
    old_ips = _addresses(sandbox, before["id"])

    started = time.monotonic()
    out = plane.run("move", AGENT, "--location", "hel1", "--yes", "--json")
    figure("move end to end (backup, new box, restore, health, DNS, retire)",
           time.monotonic() - started, "s")  # fmt: skip
    done = _result(out, "move")
    assert done["state"] == "ready" and done["backup"].endswith("-pre-move"), done
    assert done["restored"] == done["backup"], done
    steps = {s["step"]: s["result"] for s in done["steps"]}
    for step in ("backup", "create", "provision", "health", "dns", "https", "retire", "promote"):
        assert steps[step] == "ok", steps

    (after,) = [s for s in _servers(sandbox) if s["labels"].get("agent") == AGENT]
    assert after["name"] == AGENT and after["id"] != before["id"]
    new_ips = _addresses(sandbox, after["id"])
    assert len(new_ips) == 2 and not set(new_ips) & set(old_ips), (new_ips, old_ips)
    held = {ip["ip"] for ip in _admin(sandbox["admin"]["hetzner"], "/inventory")["primary_ips"]}
    assert not held & set(old_ips), "the old primary IPs were released"
    status = json.loads(plane.run("status", AGENT, "--json"))[0]
    assert status["ipv4"] in new_ips and status["health"].startswith("healthy"), status

    _remembers(admin, bot_id, "after the move", "remember the green gate", "before the move")
