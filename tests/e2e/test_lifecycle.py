"""`fatctl suspend` and `fatctl resume` keep the customer, end to end on a real nspawn box with
the real OpenClaw gateway (issue 18): a managed agent answers its Telegram sender through the
sandbox's model stand-in, so its conversation is the gateway's own state. `fatctl suspend`
backs that state up with the gateway stopped and deletes the server (its primary IPs and DNS
records kept); `fatctl resume` makes a new server of the same name on the same IPs, restores
the newest backup before the gateway first starts, and passes the health gate. The next
message reaches the model with the turns from before the suspend.

Prints: suspend (backup, server deleted) and resume (new server, restore, health gate).

Needs root and the sandbox's boxes (slow): `python3 -m pytest -q tests/e2e/test_lifecycle.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fatctl.sandbox.world import client as world
from tests.e2e.test_agent_serves import _model_call, _plane, _round_trip, _servers

pytestmark = [pytest.mark.root, pytest.mark.slow]

AGENT, OWNER, SENDER = "cust-nap", "nap@example.com", 6262


def _result(out: str, kind: str) -> dict[str, Any]:
    done = json.loads(out.strip().splitlines()[-1])
    assert done["event"] == f"{kind}.result", done
    return done


def test_suspend_and_resume_bring_the_conversation_back(
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

    for turn in ("remember the green gate", "and the silver coin", "before the suspend"):
        _round_trip(admin, bot_id, SENDER, turn)
    (before,) = [s for s in _servers(sandbox) if s["name"] == AGENT]

    started = time.monotonic()
    suspended = _result(plane.run("suspend", AGENT, "--yes", "--json"), "suspend")
    figure("suspend (backup with the gateway stopped, server deleted)",
           time.monotonic() - started, "s")  # fmt: skip
    assert suspended["state"] == "suspended" and suspended["backup"], suspended
    assert suspended["backup"].endswith("-pre-suspend")
    assert not [s for s in _servers(sandbox) if s["name"] == AGENT]  # it stopped billing
    cost = json.loads(plane.run("cost", "--json"))
    (held,) = [a for a in cost["agents"] if a["agent"] == AGENT]
    assert held["state"] == "suspended" and float(held["server"]) == 0, held
    assert float(held["cost"]) == float(held["ipv4"]) + float(held["ipv6"]), held

    started = time.monotonic()
    resumed = _result(plane.run("resume", AGENT, "--json"), "resume")
    figure("resume (new server on the kept IPs, restore, health gate)",
           time.monotonic() - started, "s")  # fmt: skip
    assert resumed["state"] == "ready", resumed
    (after,) = [s for s in _servers(sandbox) if s["name"] == AGENT]
    assert after["id"] != before["id"]  # a new server ...
    assert after["public_net"]["ipv4"] == before["public_net"]["ipv4"]  # ... on the kept IPs
    assert after["public_net"]["ipv6"] == before["public_net"]["ipv6"]

    # The conversation came back: the next model call carries the turns from before.
    _round_trip(admin, bot_id, SENDER, "after the resume")
    history = _model_call(admin, "after the resume")["user_text"]
    for turn in ("remember the green gate", "before the suspend"):
        assert turn in history, history
    status = json.loads(plane.run("status", AGENT, "--json"))[0]
    assert status["health"].startswith("healthy") and status["channels"] == "telegram ready"

    audit = json.loads(plane.run("audit", "--target", AGENT, "--limit", "500", "--json"))
    actions = [(a["action"], a["result"]) for a in audit]
    assert ("suspend.backup", "ok") in actions and ("provision.restore", "ok") in actions
