"""Automatic repair against a real (migrated) state database: which boxes the policy selects
from stored sweeps, what a rung and a page record (`repair_attempts`, `repair_holds`, the audit),
and `fatctl repair list|hold|release` as a process.

The probe results are stand-ins seeded in `probe_results`, as the sweep writes them (the sweep
itself is tested in tests/integration/monitoring). The one rung run here is the restart, for
real: the SSH client connects to the agent's address, where nothing listens, so the rung fails
and is recorded as failed. Reboot and rebuild need a box (the nspawn e2e, tests/e2e/test_repair.py).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fatctl.config import Settings
from fatctl.pacing.poll import Backoff
from fatctl.services.repair import records
from fatctl.services.repair.ladder import (
    PAGE,
    REBOOT,
    REBUILD,
    RESTART,
    Page,
    Repair,
    policies_from,
)
from fatctl.services.repair.rungs import STALE, repair
from tests.fixtures.cli import fatctl_env, run_fatctl

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
# A pinned host key (any valid one: nothing is ever reached; the target needs one to exist).
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
SWEEP = timedelta(minutes=5)


@dataclass
class Fleet:
    db: Any
    settings: Settings
    pks: dict[str, int]

    def probes(self, name: str, *oks: bool, start: datetime = T0) -> datetime:
        """Sweeps of `name` from `start`, as `probe_results` rows; the last one's instant."""
        from fatctl.state.db import session_scope
        from fatctl.state.models import ProbeResult

        at = start
        with session_scope(self.db) as session:
            for i, ok in enumerate(oks):
                at = start + i * SWEEP
                failed = None if ok else "gateway not ready"
                session.add(ProbeResult(
                    agent_pk=self.pks[name], at=at, ok=ok, via="https" if ok else "ssh",
                    status_code=200 if ok else 503, error=failed))  # fmt: skip
        return at

    def attempts(self, name: str) -> list[tuple[str, str]]:
        from sqlmodel import col, select

        from fatctl.state.db import session_scope
        from fatctl.state.models import RepairAttempt

        with session_scope(self.db) as session:
            mine = RepairAttempt.agent_pk == self.pks[name]
            rows = session.exec(select(RepairAttempt).where(mine)
                                .order_by(col(RepairAttempt.id))).all()  # fmt: skip
            return [(r.rung, r.result) for r in rows]

    def audit(self, name: str) -> list[tuple[str, str]]:
        from fatctl.state import repo
        from fatctl.state.db import session_scope

        with session_scope(self.db) as session:
            found = repo.audit_trail(session, target=name)
            return [(e.action, e.result) for e in reversed(found)]

    def context(self) -> Any:
        from fatctl.secrets import generate_master_key, keyring_from
        from fatctl.sensitive import Sensitive
        from fatctl.services.lifecycle.suspend import Context

        ring = keyring_from(Sensitive(generate_master_key()))
        return Context(self.db, ring, self.settings, None, "repair",  # type: ignore[arg-type]
                       backoff=Backoff.instant(timeout=1.0), clock=lambda: T0 + SWEEP)  # fmt: skip


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): a connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


AGENTS = {  # name: (plan, state)
    "down": ("managed", "ready"),
    "fine": ("managed", "ready"),
    "held": ("managed", "ready"),
    "asleep": ("managed", "suspended"),
    "rolling": ("managed", "ready"),
    "opped": ("managed", "degraded"),
    "diy": ("byok", "ready"),
}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    from fatctl.state import migrate
    from fatctl.state.db import make_engine, session_scope
    from fatctl.state.models import Agent, HostKey, LifecycleOp, Owner, Rollout, RolloutStep

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
                        ssh_port=str(_closed_port()), repair_rungs_byok="off")  # fmt: skip
    migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    pks = {}
    with session_scope(db) as session:
        owners = {
            plan: Owner(email=f"{plan}@example.com", plan=plan) for plan in ("managed", "byok")
        }
        session.add_all(owners.values())
        session.flush()
        for name, (plan, state) in AGENTS.items():
            agent = Agent(name=name, agent_id=f"id-{name}", owner_id=owners[plan].id or 0,
                          state=state, server_type="cx23", location="fsn1", image="debian-12",
                          runtime_version="2026.9.6", server_id="7", ipv4="127.0.0.1")  # fmt: skip
            session.add(agent)
            session.flush()
            pks[name] = agent.id or 0
            session.add(HostKey(agent_pk=pks[name], key_type="ssh-ed25519", fingerprint="x",
                                public_key=HOST_KEY))  # fmt: skip
        rollout = Rollout(kind="upgrade", target="2026.10.1", state="running", actor="op")
        session.add(rollout)
        session.flush()
        session.add(
            RolloutStep(rollout_id=rollout.id or 0, agent_pk=pks["rolling"], phase="pending")
        )
        session.add(LifecycleOp(agent_pk=pks["opped"], kind="rebuild", state="failed", actor="op"))
    found = Fleet(db, settings, pks)
    records.hold(db, "held", "op", "investigating", T0)
    for name in AGENTS:
        found.probes(name, *([True] if name == "fine" else [True, False, False]))
    yield found
    db.dispose()


def test_the_sweep_selects_only_boxes_the_policy_may_touch(fleet: Fleet) -> None:
    now = T0 + 2 * SWEEP + timedelta(seconds=30)
    chosen = records.select(fleet.db, policies_from(fleet.settings), now)
    # held: an operator's hold; asleep: suspended; rolling: a running rollout's pending step;
    # opped: an unfinished rebuild op; diy: the byok plan's ladder is off; fine: healthy.
    assert [(d.agent, d.action) for d in chosen] == [("down", Repair(RESTART, 1))]


def test_a_rung_is_recorded_audited_and_never_run_twice_on_the_same_evidence(fleet: Fleet) -> None:
    policies, ctx = policies_from(fleet.settings), fleet.context()
    now = T0 + 2 * SWEEP + timedelta(seconds=30)
    done = repair(ctx, "down", RESTART, policies, now)
    assert (done.rung, done.result) == (RESTART, "failed"), done
    assert "refused" in done.detail.lower() or "connect" in done.detail.lower(), done.detail
    assert fleet.attempts("down") == [(RESTART, "failed")]
    assert fleet.audit("down")[-1] == ("repair.restart", "failed")
    # The same decision enqueued twice (a replayed sweep): the second finds no new evidence.
    again = repair(ctx, "down", RESTART, policies, now + timedelta(seconds=5))
    assert again.result == STALE and fleet.attempts("down") == [(RESTART, "failed")]
    # The next sweep fails too: the ladder climbs.
    fleet.probes("down", False, start=T0 + 3 * SWEEP)
    chosen = records.select(fleet.db, policies, T0 + 3 * SWEEP + timedelta(seconds=30))
    assert [(d.agent, d.action) for d in chosen] == [("down", Repair(REBOOT, 2))]


def test_an_exhausted_ladder_pages_once_and_then_leaves_the_box_alone(fleet: Fleet) -> None:
    from fatctl.state.db import session_scope
    from fatctl.state.models import RepairAttempt

    policies, ctx = policies_from(fleet.settings), fleet.context()
    with session_scope(fleet.db) as session:  # every rung ran, each followed by a failed sweep
        for i, rung in enumerate((RESTART, REBOOT, REBUILD)):
            at = T0 + (2 + i) * SWEEP + timedelta(seconds=30)
            ended = at + timedelta(seconds=60)
            session.add(RepairAttempt(agent_pk=fleet.pks["down"], rung=rung, started_at=at,
                                      finished_at=ended, result="ok"))  # fmt: skip
    last = fleet.probes("down", False, False, False, start=T0 + 3 * SWEEP)
    now = last + timedelta(seconds=30)
    chosen = records.select(fleet.db, policies, now)
    assert [(d.agent, type(d.action)) for d in chosen] == [("down", Page)]
    paged = repair(ctx, "down", PAGE, policies, now)
    assert paged.result == "paged" and "exhausted" in paged.detail
    assert fleet.attempts("down")[-1] == (PAGE, "paged")
    assert fleet.audit("down")[-1] == ("repair.paged", "paged")
    assert records.select(fleet.db, policies, now + SWEEP) == []  # paged: left alone
    fleet.probes("down", False, start=last + SWEEP)
    assert records.select(fleet.db, policies, last + 2 * SWEEP) == []
    # The operator releases it: the ladder starts afresh at the next failed sweep.
    assert records.release(fleet.db, "down", "op", last + 2 * SWEEP) == "paged"
    fleet.probes("down", False, start=last + 3 * SWEEP)
    chosen = records.select(fleet.db, policies, last + 3 * SWEEP + timedelta(seconds=30))
    assert [(d.agent, d.action) for d in chosen] == [("down", Repair(RESTART, 1))]


def test_repair_cli_lists_holds_and_releases(fleet: Fleet, tmp_path: Path) -> None:
    from fatctl.secrets import generate_master_key

    env = fatctl_env(FATCTL_DATABASE_URL=fleet.settings.database_url,
                     FATCTL_DATA_DIR=str(tmp_path), FATCTL_MASTER_KEY=generate_master_key(),
                     FATCTL_REPAIR_RUNGS_BYOK="off", FATCTL_ACTOR="op@test")  # fmt: skip
    run_fatctl("repair", "hold", "down", "--reason", "disk swap", env=env, timeout=60, check=0)
    listed = run_fatctl("repair", "list", "--json", env=env, timeout=60, check=0)
    rows = {r["agent"]: r for r in json.loads(listed.stdout)}
    assert (
        rows["down"]["hold"] == "operator" and rows["down"]["next"] == "leave: held by an operator"
    )
    assert rows["held"]["hold"] == "operator" and "fine" not in rows
    assert rows["diy"]["next"] == "leave: no repair ladder for plan byok"
    again = run_fatctl("repair", "release", "fine", env=env, timeout=60, check=2)
    assert "not held or paged" in again.stderr and again.stderr.count("\n") <= 2
    run_fatctl("repair", "release", "down", env=env, timeout=60, check=0)
    assert fleet.audit("down")[-2:] == [("repair.hold", "ok"), ("repair.release", "ok")]
    assert fleet.attempts("down") == [("release", "ok")]
    bad = run_fatctl("repair", "hold", "Not_A_Name", env=env, timeout=60, check=2)
    assert bad.stdout == ""


def test_a_bad_ladder_setting_is_refused_naming_it(fleet: Fleet) -> None:
    from fatctl.errors import BadInput

    with pytest.raises(BadInput, match="FATCTL_REPAIR_MAX_PER_WINDOW"):
        policies_from(replace(fleet.settings, repair_max_per_window="many"))


def test_holds_pages_and_rungs_are_metrics(fleet: Fleet) -> None:
    """`GET /metrics` (the fleet collector over the state database) shows each held or paged
    agent by name (a page is an alert's) and the recorded rungs by outcome."""
    from prometheus_client import generate_latest

    from fatctl.monitoring.metrics import Sources, fleet_registry

    now = T0 + 2 * SWEEP + timedelta(seconds=30)
    repair(fleet.context(), "down", RESTART, policies_from(fleet.settings), now)
    records.page(fleet.db, "opped", "ladder exhausted", "repair", now)
    registry = fleet_registry(Sources(state_url=fleet.settings.database_url, budgets=None))
    body = generate_latest(registry).decode()
    assert 'fatctl_repair_held{agent="held",kind="operator"} 1.0' in body
    assert 'fatctl_repair_held{agent="opped",kind="paged"} 1.0' in body
    assert 'fatctl_repair_held{agent="down"' not in body
    assert 'fatctl_repair_attempts{result="failed",rung="restart"} 1.0' in body
    assert 'fatctl_repair_attempts{result="paged",rung="page"} 1.0' in body
    assert 'fatctl_metrics_source_up{source="repair"} 1.0' in body


def test_a_failed_last_rung_pages_at_once(fleet: Fleet) -> None:
    """A one-rung ladder whose restart fails: paged in the same run (a failed rebuild leaves
    its op open, which the policy leaves alone: the next sweep would never page it)."""
    policies = policies_from(replace(fleet.settings, repair_rungs_managed="restart"))
    done = repair(
        fleet.context(), "down", RESTART, policies, T0 + 2 * SWEEP + timedelta(seconds=30)
    )
    assert done.result == "failed" and done.detail.endswith("; paged"), done
    assert fleet.attempts("down") == [(RESTART, "failed"), (PAGE, "paged")]
    assert fleet.audit("down")[-2:] == [("repair.restart", "failed"), ("repair.paged", "paged")]


def test_serve_refuses_a_bad_ladder_before_it_starts(fleet: Fleet, tmp_path: Path) -> None:
    """A bad FATCTL_REPAIR_* is refused by `fatctl serve` at start (one line, exit 2), not
    found by every sweep afterwards as a failed run."""
    from fatctl.secrets import generate_master_key

    env = fatctl_env(FATCTL_DATABASE_URL=fleet.settings.database_url,
                     FATCTL_DATA_DIR=str(tmp_path), FATCTL_MASTER_KEY=generate_master_key(),
                     FATCTL_ENGINE="hcloud", HCLOUD_TOKEN="x" * 64,
                     FATCTL_REPAIR_RUNGS_MANAGED="restart,wipe")  # fmt: skip
    port = str(_closed_port())
    refused = run_fatctl("serve", "--no-box", "--port", port, env=env, timeout=60, check=2)
    assert "FATCTL_REPAIR_RUNGS_MANAGED: unknown repair rung 'wipe'" in refused.stderr
    assert refused.stderr.strip().count("\n") <= 1, refused.stderr
