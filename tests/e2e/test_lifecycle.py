"""The lifecycle keeps the customer, end to end on one real nspawn box with the real OpenClaw
gateway (issue 18). A managed agent answers its Telegram sender through the sandbox's model
stand-in, so its conversation is the gateway's own state. Then, on the same agent (one box, to
keep CI's time: a box costs minutes):

- `fatctl rebuild` backs that state up with the gateway stopped, reinstalls the same server on a
  fresh disk (a file left on the old disk is gone), restores the backup before the gateway first
  starts and passes the health gate: same server, IPs and pinned host key, and the next message
  reaches the model with the turns from before.
- `fatctl move --location hel1` backs the state up with the old gateway stopped (and kept
  stopped: one bot never serves from two boxes), makes a second box in hel1 on new primary IPs,
  restores the backup there before its gateway first starts, passes the health gate, points DNS
  at the new IPs, checks HTTPS, and only then deletes the old server and releases its IPs; the
  conversation goes on with the turns from before.
- `fatctl suspend` backs up again and deletes the server (primary IPs and DNS kept; `fatctl
  cost` shows only the IPs); `fatctl resume` makes a new server of the same name on the same
  IPs, restores the newest backup before the gateway first starts, and the conversation,
  including what was said between the rebuild and the suspend, is back.

Prints: rebuild, move, suspend and resume end to end.

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
from tests.e2e.test_provision_e2e import _admin

pytestmark = [pytest.mark.root, pytest.mark.slow]

AGENT, OWNER, SENDER = "cust-keep", "keep@example.com", 6161
OLD_DISK_MARK = "/var/tmp/fat-old-disk"


def _result(out: str, kind: str) -> dict[str, Any]:
    done = json.loads(out.strip().splitlines()[-1])
    assert done["event"] == f"{kind}.result", done
    return done


def _remembers(admin: str, bot_id: Any, said: str, *turns: str) -> None:
    """The next message reaches the model with the earlier turns in its history."""
    _round_trip(admin, bot_id, SENDER, said)
    history = _model_call(admin, said)["user_text"]
    for turn in turns:
        assert turn in history, history


def _addresses(sandbox: dict[str, Any], server_id: int) -> list[str]:
    """The primary IPs the emulated project has assigned to that server."""
    ips = _admin(sandbox["admin"]["hetzner"], "/inventory")["primary_ips"]
    return sorted(ip["ip"] for ip in ips if ip["assignee_id"] == server_id)


def _healthy(plane: Any) -> None:
    status = json.loads(plane.run("status", AGENT, "--ssh", "--json"))[0]
    assert status["health"].startswith("healthy") and status["channels"] == "telegram ready"
    assert status["readyz"].startswith("ready"), status  # HTTPS, verified by the sandbox root


def test_rebuild_move_suspend_and_resume_bring_the_conversation_back(
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
    kept = first_ips = _addresses(sandbox, before["id"])
    assert len(kept) == 2, kept  # an IPv4 and an IPv6
    ipv4 = json.loads(plane.run("status", AGENT, "--json"))[0]["ipv4"]
    plane.run("ssh", AGENT, "--", f"sudo touch {OLD_DISK_MARK}")

    # --- rebuild: same server, fresh disk, state back ---
    started = time.monotonic()
    out = plane.run("rebuild", AGENT, "--yes", "--no-snapshot", "--json")
    figure("rebuild end to end (backup, reinstall, restore, health gate)",
           time.monotonic() - started, "s")  # fmt: skip
    done = json.loads(out.strip().splitlines()[-1])
    assert done["state"] == "ready" and done["backup"], done
    assert done["restored"] == done["backup"], done
    steps = {s["step"]: s["result"] for s in done["steps"]}
    assert steps["backup"] == steps["infra"] == steps["provision"] == "ok", steps
    (after,) = [s for s in _servers(sandbox) if s["name"] == AGENT]
    assert after["id"] == before["id"] and _addresses(sandbox, after["id"]) == kept
    assert done["ipv4"] == ipv4 and done["server_id"] == str(before["id"]), done
    gone = plane.run("ssh", AGENT, "--", f"test ! -e {OLD_DISK_MARK} && echo fresh")
    assert gone.strip() == "fresh", gone
    listed = json.loads(plane.run("backup", "list", AGENT, "--json"))
    assert done["backup"] in [b["name"] for b in listed], listed
    assert done["backup"].endswith("-pre-rebuild")
    _remembers(admin, bot_id, "after the rebuild", "remember the blue door", "before the rebuild")
    _healthy(plane)

    # --- move: a new box in another location on new IPs, the old one retired after ---
    started = time.monotonic()
    moved = _result(plane.run("move", AGENT, "--location", "hel1", "--yes", "--json"), "move")
    figure("move end to end (backup, new box, restore, health, DNS, retire)",
           time.monotonic() - started, "s")  # fmt: skip
    assert moved["state"] == "ready" and moved["backup"].endswith("-pre-move"), moved
    assert moved["restored"] == moved["backup"], moved
    steps = {s["step"]: s["result"] for s in moved["steps"]}
    for step in ("backup", "create", "provision", "health", "dns", "https", "retire", "promote"):
        assert steps[step] == "ok", steps
    (there,) = [s for s in _servers(sandbox) if s["labels"].get("agent") == AGENT]
    assert there["name"] == AGENT and there["id"] != before["id"]
    assert there["location"] == "hel1", there["location"]
    kept = _addresses(sandbox, there["id"])
    assert len(kept) == 2 and not set(kept) & set(first_ips), (kept, first_ips)
    held = {ip["ip"] for ip in _admin(sandbox["admin"]["hetzner"], "/inventory")["primary_ips"]}
    assert not held & set(first_ips), "the old primary IPs were released"
    status = json.loads(plane.run("status", AGENT, "--json"))[0]
    assert status["ipv4"] in kept, status
    _remembers(admin, bot_id, "after the move", "remember the blue door", "after the rebuild")
    _healthy(plane)

    # --- suspend: server gone (no billing), IPs kept ---
    started = time.monotonic()
    suspended = _result(plane.run("suspend", AGENT, "--yes", "--json"), "suspend")
    figure("suspend (backup with the gateway stopped, server deleted)",
           time.monotonic() - started, "s")  # fmt: skip
    assert suspended["state"] == "suspended" and suspended["backup"], suspended
    assert suspended["backup"].endswith("-pre-suspend")
    assert not [s for s in _servers(sandbox) if s["name"] == AGENT]
    held_ips = _admin(sandbox["admin"]["hetzner"], "/inventory")["primary_ips"]
    assert sorted(ip["ip"] for ip in held_ips if ip["ip"] in kept) == kept  # still the project's
    cost = json.loads(plane.run("cost", "--json"))
    (held,) = [a for a in cost["agents"] if a["agent"] == AGENT]
    assert held["state"] == "suspended" and float(held["server"]) == 0, held
    assert float(held["cost"]) == float(held["ipv4"]) + float(held["ipv6"]), held

    # --- resume: a new server on the kept IPs, state back ---
    started = time.monotonic()
    resumed = _result(plane.run("resume", AGENT, "--json"), "resume")
    figure("resume (new server on the kept IPs, restore, health gate)",
           time.monotonic() - started, "s")  # fmt: skip
    assert resumed["state"] == "ready", resumed
    (back,) = [s for s in _servers(sandbox) if s["name"] == AGENT]
    assert back["id"] != there["id"]  # a new server ...
    assert _addresses(sandbox, back["id"]) == kept  # ... on the kept IPs
    _remembers(admin, bot_id, "after the resume", "remember the blue door", "after the move")
    _healthy(plane)

    audit = json.loads(plane.run("audit", "--target", AGENT, "--limit", "500", "--json"))
    actions = [(a["action"], a["result"]) for a in audit]
    for done_step in ("rebuild.backup", "move.backup", "suspend.backup", "provision.restore"):
        assert (done_step, "ok") in actions, actions
