"""Lifecycle ops (`services/lifecycle/ops.py`): a rerun continues after the last finished
step, an open op refuses another kind, a step is audited as `<kind>.<step>`, a skipped step is
audited as skipped, and the agent's lease is held for the op's whole run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fatctl.errors import FatctlError, LeaseHeld
from fatctl.services.agents.records import NewAgent, create_agent
from fatctl.services.common.leases import agent_lease
from fatctl.services.lifecycle.ops import OpInProgress, lifecycle_op, ops_of
from fatctl.state.db import session_scope
from fatctl.state.leases import lease

STEPS = ("one", "two", "three")


class Boom(FatctlError):
    pass


@pytest.fixture
def db(tmp_path: Path) -> Any:
    from fatctl.secrets import generate_master_key, keyring_from
    from fatctl.sensitive import Sensitive
    from fatctl.state import migrate
    from fatctl.state.db import make_engine

    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    ring = keyring_from(Sensitive(generate_master_key()))
    req = NewAgent("ops-a", "ops@example.com", "managed", "cx23", "fsn1", "debian-12", "2026.9.6")
    create_agent(engine, ring, req, "test")
    yield engine
    engine.dispose()


def audit(db: Any, prefix: str) -> list[tuple[str, str]]:
    from sqlmodel import col, select

    from fatctl.state.models import AuditEvent

    with session_scope(db) as session:
        rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
        return [(r.action, r.result) for r in rows if r.action.startswith(prefix)]


def test_a_rerun_keeps_finished_steps_and_runs_the_rest(db: Any) -> None:
    ran: list[str] = []
    with pytest.raises(Boom), lifecycle_op(db, "ops-a", "suspend", "test", steps=STEPS,
                      params={"snapshot": True}) as op:  # fmt: skip
        op.run("one", lambda: ran.append("one") or {"made": "x"})
        op.remember(snapshot_id="42")
        op.run("two", lambda: (_ for _ in ()).throw(Boom("step two broke")))
    [failed] = ops_of(db, "ops-a")
    assert (failed.state, failed.last_step) == ("failed", "one")
    assert failed.params == {"snapshot": True, "snapshot_id": "42"}
    assert failed.error == "step two broke"

    with lifecycle_op(db, "ops-a", "suspend", "test", steps=STEPS,
                      params={"snapshot": False}) as op:  # fmt: skip
        assert op.resumed and op.fate("one") == "kept" and op.fate("two") == "run"
        assert op.params == {"snapshot": False, "snapshot_id": "42"}  # the rerun's flags win
        for step in STEPS:
            op.run(step, lambda step=step: ran.append(step) or None)  # type: ignore[misc]
    assert ran == ["one", "two", "three"]  # `one` not repeated
    [done] = ops_of(db, "ops-a")
    assert (done.id, done.state, done.last_step, done.error) == (failed.id, "done", "three", "")
    assert audit(db, "suspend.") == [
        ("suspend.one", "started"), ("suspend.one", "ok"),
        ("suspend.two", "started"), ("suspend.two", "failed"),
        ("suspend.two", "started"), ("suspend.two", "ok"),
        ("suspend.three", "started"), ("suspend.three", "ok"),
    ]  # fmt: skip

    # A done op is closed: the next run of the kind is a new op, from its first step.
    with lifecycle_op(db, "ops-a", "suspend", "test", steps=STEPS) as op:
        assert not op.resumed and op.fate("one") == "run"
    assert [o.state for o in ops_of(db, "ops-a")] == ["done", "done"]


def test_an_open_op_refuses_another_kind_before_writing(db: Any) -> None:
    with pytest.raises(Boom), lifecycle_op(db, "ops-a", "suspend", "test", steps=STEPS) as op:
        op.run("one", lambda: None)
        raise Boom("killed")
    with pytest.raises(OpInProgress) as refused, lifecycle_op(db, "ops-a", "archive", "test",
                                                               steps=STEPS) as op:  # fmt: skip
        op.run("one", lambda: None)  # never reached
    assert refused.value.exit_code == 2
    assert refused.value.one_line() == (
        "agent ops-a has an unfinished suspend (op 1, failed after step one): archive refused "
        "(finish it first: `fatctl suspend ops-a`)"
    )
    assert [o.kind for o in ops_of(db, "ops-a")] == ["suspend"]
    assert not audit(db, "archive.")


def test_a_skipped_step_is_audited_and_kept(db: Any) -> None:
    with pytest.raises(Boom), lifecycle_op(db, "ops-a", "suspend", "test", steps=STEPS) as op:
        op.skip("one", "skipped by --no-backup")
        raise Boom("killed")
    assert audit(db, "suspend.") == [("suspend.one", "skipped")]
    with lifecycle_op(db, "ops-a", "suspend", "test", steps=STEPS) as op:
        assert op.fate("one") == "kept"


def test_the_agent_lease_is_held_for_the_op_and_lent_to_what_it_calls(db: Any) -> None:
    with lifecycle_op(db, "ops-a", "suspend", "test", steps=STEPS):
        # A service the op calls takes the same lease again: lent, not refused.
        with lease(db, agent_lease("ops-a")):
            pass
        # Another run (another context) is refused by the lease.
        from threading import Thread

        seen: list[BaseException] = []

        def other() -> None:
            try:
                with lifecycle_op(db, "ops-a", "suspend", "test", steps=STEPS):
                    pass
            except BaseException as exc:
                seen.append(exc)

        t = Thread(target=other)
        t.start()
        t.join()
        assert len(seen) == 1 and isinstance(seen[0], LeaseHeld)
