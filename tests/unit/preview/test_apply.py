"""`fatctl apply`'s logic with a recording engine: the replacement guard, waves and the rollout
halt rule, untouched unchanged agents, the resize -> health gate order, and the audit trail
(real migrated SQLite, real leases)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fatctl.domain import BoxInfo, Plan, ResourceChange, RolloutPolicy
from fatctl.errors import BadInput, CloudError
from fatctl.infra.hcloud import fleet as hcloud_fleet
from fatctl.services.fleet.apply import ApplyFailed, ApplyRun, apply_fleet, guard
from fatctl.services.fleet.preview import AgentPreview, FleetPreview
from tests.stacks.test_agent_program import make_spec


def plan(name: str, *changes: tuple[str, str, str]) -> Plan:
    return Plan(name, tuple(ResourceChange(k, name, a, d) for k, a, d in changes))


LABELS = ("server", "update", "labels")
RESIZE = ("server", "update", "server_type cx23 -> cx33")
MOVE = ("server", "replace", "location fsn1 -> hel1")


class Engines:
    """Builds one recording engine per agent, as the CLI builds one real engine per agent."""

    def __init__(self, failing: frozenset[str] = frozenset(), name: str = "hcloud") -> None:
        self.failing, self.name = failing, name
        self.applied: list[str] = []
        self.h = object()

    def __call__(self, sink: Any) -> Any:
        outer = self

        class Engine:
            name = outer.name
            capabilities: frozenset[Any] = frozenset()

            def hcloud_client(self) -> Any:
                return outer.h

            def apply(self, spec: Any, *, user_data: str = "") -> BoxInfo:
                outer.applied.append(spec.name)
                if spec.name in outer.failing:
                    raise CloudError(f"Hetzner API: label server {spec.name}: boom")
                sink(ResourceChange("server", spec.name, "update", "labels"))
                return BoxInfo(spec.name, "1", "", "", "running", "cx23", "fsn1", "debian-12")

        return Engine()


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Any]:
    from fatctl.state.db import make_engine
    from fatctl.state.migrate import upgrade

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def run_of(db: Any, engines: Engines, policy: RolloutPolicy, gate: Any = None) -> ApplyRun:
    events: list[tuple[str, dict[str, Any]]] = []
    run = ApplyRun(db, "test", lambda kind, **f: events.append((kind, f)), engines,
                   gate or (lambda agent: None), policy)  # fmt: skip
    run.events = events  # type: ignore[attr-defined]
    return run


def fleet(plans: dict[str, Plan]) -> tuple[FleetPreview, list[Any]]:
    rows = tuple(AgentPreview(n, p) for n, p in sorted(plans.items()))
    return FleetPreview("hcloud", rows), [make_spec(name=n) for n in plans]


def audit_rows(db: Any) -> list[tuple[str, str, str]]:
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    with session_scope(db) as session:
        trail = repo.audit_trail(session, limit=100)
        return [(e.action, e.target, e.result) for e in reversed(trail)]


def test_guard_refuses_unnamed_live_replacements_with_one_line() -> None:
    preview, _ = fleet({"a": plan("a", MOVE), "b": plan("b", LABELS), "c": plan("c", MOVE)})
    with pytest.raises(BadInput) as err:
        guard(preview, set())
    line = err.value.one_line()
    assert err.value.exit_code == 2 and "\n" not in line
    assert "replace the live box of a, c: refused" in line and "--allow-replace" in line
    with pytest.raises(BadInput, match="live box of c:"):
        guard(preview, {"a"})
    guard(preview, {"a", "c"})  # both named: allowed
    with pytest.raises(BadInput, match="not selected: zed"):
        guard(preview, {"a", "c", "zed"})


def test_guard_refuses_to_create_servers() -> None:
    preview, _ = fleet({"a": plan("a", ("server", "create", "cx23 fsn1")), "b": plan("b", LABELS)})
    with pytest.raises(BadInput, match=r"no server exists for a: .*fatctl provision"):
        guard(preview, set())


def test_guard_refuses_when_an_agent_could_not_be_previewed() -> None:
    preview = FleetPreview("hcloud", (AgentPreview("a", plan("a", LABELS)),
                                      AgentPreview("b", error="Hetzner API: 503")))  # fmt: skip
    with pytest.raises(ApplyFailed, match=r"cannot preview b .*nothing applied") as err:
        guard(preview, set())
    assert err.value.exit_code == 1


def test_waves_apply_only_changed_agents(db: Any) -> None:
    plans = {n: plan(n, LABELS) for n in ("a", "b", "c", "d", "e")}
    plans["same"] = plan("same", ("server", "same", ""))
    preview, specs = fleet(plans)
    engines = Engines()
    run = run_of(db, engines, RolloutPolicy(canary=1, batch=2))
    report = apply_fleet(run, preview, specs)
    assert report.state == "completed" and not report.halted
    assert sorted(engines.applied) == ["a", "b", "c", "d", "e"]  # `same` never touched
    rows = {r["agent"]: r for r in report.rows()}
    assert rows["same"]["phase"] == "unchanged" and rows["same"]["wave"] == ""
    assert [rows[n]["wave"] for n in "abcde"] == [0, 1, 1, 2, 2]
    assert rows["a"]["changes"] == "update server a (labels)"
    waves = [f["agents"] for kind, f in run.events if kind == "wave.start"]  # type: ignore[attr-defined]
    assert waves == [["a"], ["b", "c"], ["d", "e"]]
    trail = audit_rows(db)
    assert trail[0] == ("apply.start", "fleet", "ok")
    assert trail[-1] == ("apply.end", "fleet", "completed")
    done = sorted(t for a, t, r in trail if a == "apply.agent" and r == "succeeded")
    assert done == list("abcde")


def test_a_failed_canary_halts_and_skips_the_rest(db: Any) -> None:
    preview, specs = fleet({n: plan(n, LABELS) for n in ("a", "b", "c")})
    engines = Engines(failing=frozenset({"a"}))
    report = apply_fleet(run_of(db, engines, RolloutPolicy(canary=1, batch=5)), preview, specs)
    assert report.halted and "after wave 0" in report.reason
    assert engines.applied == ["a"]
    phases = {r["agent"]: (r["phase"], r["error"]) for r in report.rows()}
    assert phases["a"][0] == "failed" and "boom" in phases["a"][1]
    assert phases["b"] == phases["c"] == ("skipped", "halted")
    assert ("apply.end", "fleet", "halted") in audit_rows(db)


def test_max_failures_tolerates_then_halts(db: Any) -> None:
    names = ("a", "b", "c", "d", "e", "f")
    preview, specs = fleet({n: plan(n, LABELS) for n in names})
    engines = Engines(failing=frozenset({"b", "d"}))
    policy = RolloutPolicy(canary=1, batch=2, max_failures=1)
    report = apply_fleet(run_of(db, engines, policy), preview, specs)
    phases = {r["agent"]: r["phase"] for r in report.rows()}
    # wave 1 (b, c): one failure, tolerated; wave 2 (d, e): a second one, halt; f skipped.
    assert phases == {"a": "succeeded", "b": "failed", "c": "succeeded", "d": "failed",
                      "e": "succeeded", "f": "skipped"}  # fmt: skip
    assert report.halted and "after wave 2" in report.reason


def test_resize_then_apply_then_health_gate(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []

    def resize(h: Any, name: str, to: str, *, upgrade_disk: bool, step: Any) -> bool:
        order.append(f"resize {name} {to} disk={'up' if upgrade_disk else 'kept'}")
        step("power_off", "was running")
        step("change_type", f"cx23 -> {to}")
        step("power_on", "")
        return True

    def gate(agent: str) -> str | None:
        order.append(f"gate {agent}")
        return None if agent == "a" else "gateway inactive"

    monkeypatch.setattr(hcloud_fleet, "resize", resize)
    preview, specs = fleet({"a": plan("a", RESIZE), "b": plan("b", RESIZE), "c": plan("c", LABELS)})
    engines = Engines()
    run = run_of(db, engines, RolloutPolicy(canary=0, batch=1), gate)
    report = apply_fleet(run, preview, specs)
    assert order == ["resize a cx33 disk=kept", "gate a", "resize b cx33 disk=kept", "gate b"]
    rows = {r["agent"]: r for r in report.rows()}
    assert rows["a"]["phase"] == "succeeded" and "health gate passed" in rows["a"]["changes"]
    assert rows["b"]["phase"] == "failed" and "gateway inactive" in rows["b"]["error"]
    assert report.halted and rows["c"]["phase"] == "skipped"  # max_failures 0
    steps = [(a, t) for a, t, _ in audit_rows(db) if a.startswith("apply.") and t == "a"]
    assert steps == [("apply.power_off", "a"), ("apply.change_type", "a"), ("apply.power_on", "a"),
                     ("apply.health_gate", "a"), ("apply.agent", "a")]  # fmt: skip


def test_a_box_held_by_a_rollout_is_not_touched(db: Any) -> None:
    from fatctl.state.leases import lease

    preview, specs = fleet({"a": plan("a", LABELS)})
    engines = Engines()
    with lease(db, "agent:a", ttl_s=60):
        report = apply_fleet(run_of(db, engines, RolloutPolicy(canary=1)), preview, specs)
    assert engines.applied == [] and report.rows()[0]["phase"] == "failed"
    assert report.halted


def test_events_are_json_serialisable(db: Any, tmp_path: Path) -> None:
    preview, specs = fleet({"a": plan("a", LABELS)})
    run = run_of(db, Engines(), RolloutPolicy())
    apply_fleet(run, preview, specs)
    kinds = [k for k, _ in run.events]  # type: ignore[attr-defined]
    assert kinds == ["apply.start", "wave.start", "apply.change", "agent.done", "apply.completed"]
    json.dumps([f for _, f in run.events])  # type: ignore[attr-defined]
