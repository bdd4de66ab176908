"""`fatctl rebuild` keeps the customer, end to end on a real nspawn box with the real OpenClaw
gateway (issue 18): a managed agent answers its Telegram sender through the sandbox's model
stand-in, so its conversation is the gateway's own state; `fatctl rebuild` backs that state up
with the gateway stopped, reinstalls the same server on a fresh disk (a file left on the old
disk is gone), restores the backup before the gateway first starts, and passes the health gate.
The next message reaches the model with the turns from before the rebuild: the conversation
came back, and the server, its IPs and its pinned host key are the same.

Prints: rebuild end to end (backup, reinstall, boot, restore, health gate).

Needs root and the sandbox's boxes (slow): `python3 -m pytest -q tests/e2e/test_rebuild.py`.
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

AGENT, OWNER, SENDER = "cust-keep", "keep@example.com", 6161
OLD_DISK_MARK = "/var/tmp/fat-old-disk"


def test_rebuild_brings_the_conversation_back(
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

    # State only the gateway holds: a conversation, turn by turn.
    for turn in ("remember the blue door", "and the red key", "before the rebuild"):
        _round_trip(admin, bot_id, SENDER, turn)
    (before,) = [s for s in _servers(sandbox) if s["name"] == AGENT]
    ipv4 = json.loads(plane.run("status", AGENT, "--json"))[0]["ipv4"]
    plane.run("ssh", AGENT, "--", f"sudo touch {OLD_DISK_MARK}")

    started = time.monotonic()
    out = plane.run("rebuild", AGENT, "--yes", "--no-snapshot", "--json")
    figure("rebuild end to end (backup, reinstall, restore, health gate)",
           time.monotonic() - started, "s")  # fmt: skip
    done = json.loads(out.strip().splitlines()[-1])
    assert done["state"] == "ready" and done["backup"], done
    assert done["restored"] == done["backup"], done
    steps = {s["step"]: s["result"] for s in done["steps"]}
    assert steps["backup"] == steps["infra"] == steps["provision"] == "ok", steps

    # The same server and addresses; a fresh disk; SSH trusted it with the pinned key.
    (after,) = [s for s in _servers(sandbox) if s["name"] == AGENT]
    assert (after["id"], after.get("public_net")) == (before["id"], before.get("public_net"))
    assert done["ipv4"] == ipv4 and done["server_id"] == str(before["id"]), done
    gone = plane.run("ssh", AGENT, "--", f"test ! -e {OLD_DISK_MARK} && echo fresh")
    assert gone.strip() == "fresh", gone
    listed = json.loads(plane.run("backup", "list", AGENT, "--json"))
    assert done["backup"] in [b["name"] for b in listed], listed
    assert done["backup"].endswith("-pre-rebuild")

    # The conversation came back: the next model call carries the turns from before.
    _round_trip(admin, bot_id, SENDER, "after the rebuild")
    history = _model_call(admin, "after the rebuild")["user_text"]
    for turn in ("remember the blue door", "before the rebuild"):
        assert turn in history, history
    status = json.loads(plane.run("status", AGENT, "--json"))[0]
    assert status["health"].startswith("healthy") and status["channels"] == "telegram ready"

    audit = json.loads(plane.run("audit", "--target", AGENT, "--limit", "500", "--json"))
    actions = [(a["action"], a["result"]) for a in audit]
    assert ("rebuild.backup", "ok") in actions and ("provision.restore", "ok") in actions
