"""The notifier's pure half: rules read from the shipped file, Prometheus's pending/firing
states, what each channel is due, and the rate limit's summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fatctl.monitoring.notify_rules import (
    CLEARED,
    FIRING,
    PENDING,
    RESOLVED,
    Active,
    Known,
    Notice,
    RuleShapeError,
    decide,
    evaluate,
    load_rules,
    parse_rule,
    plan_messages,
    step,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
RULES = load_rules()


def test_the_notified_rules_come_from_the_shipped_file_with_its_thresholds() -> None:
    """One definition: the thresholds, `for:` and severities are the rules file's own."""
    down, disk, stale = RULES["AgentDown"], RULES["BoxDiskLow"], RULES["BackupStale"]
    assert (down.metric, down.op, down.threshold, down.for_s) == ("fatctl_probe_up", "==", 0, 600)
    assert (disk.threshold, disk.severity) == (512 * 1024 * 1024, "ticket")
    assert (stale.form, stale.threshold, stale.for_s) == ("age", 86400, 1800)
    assert RULES["R2CredentialsExpiring"].form == "left"
    assert (RULES["WorkflowsFailing"].form, RULES["WorkflowsFailing"].window_s) == ("increase", 900)
    assert RULES["RepairPaged"].matchers == (("kind", "paged"),)


def test_a_changed_threshold_in_the_rules_text_changes_the_notifier() -> None:
    text = "groups:\n- name: g\n  rules:\n  - alert: AgentDown\n    expr: fatctl_probe_up < 0.5\n" \
           "    for: 3m\n    labels: {severity: page}\n"  # fmt: skip
    rule = load_rules(text, ["AgentDown"])["AgentDown"]
    assert (rule.op, rule.threshold, rule.for_s) == ("<", 0.5, 180)


@pytest.mark.parametrize(
    "expr",
    ["fatctl_api_budget_remaining / fatctl_api_budget_limit < 0.1", "up == 0 or absent(x)",
     'fatctl_repair_held{kind=~"p.*"} == 1'],
)  # fmt: skip
def test_a_shape_the_notifier_cannot_read_is_refused(expr: str) -> None:
    with pytest.raises(RuleShapeError):
        parse_rule({"alert": "X", "expr": expr})


def test_evaluate_judges_each_series_by_its_rule_and_matchers() -> None:
    now = T0
    samples = {
        "fatctl_probe_up": [({"agent": "a"}, 0.0), ({"agent": "b"}, 1.0)],
        "fatctl_backup_last_timestamp_seconds": [
            ({"agent": "old"}, (now - timedelta(days=2)).timestamp()),
            ({"agent": "new"}, (now - timedelta(hours=1)).timestamp()),
        ],
        "fatctl_r2_credentials_expiry_timestamp_seconds": [
            ({"agent": "soon"}, (now + timedelta(hours=2)).timestamp()),
            ({"agent": "later"}, (now + timedelta(days=5)).timestamp()),
        ],
        "fatctl_repair_held": [
            ({"agent": "p", "kind": "paged"}, 1.0),
            ({"agent": "h", "kind": "operator"}, 1.0),
        ],
    }
    keys = {a.key for a in evaluate(RULES.values(), samples, now, {"WorkflowsFailing": 2.0})}
    assert keys == {"AgentDown{agent=a}", "BackupStale{agent=old}",
                    "R2CredentialsExpiring{agent=soon}", "RepairPaged{agent=p,kind=paged}",
                    "WorkflowsFailing"}  # fmt: skip


def test_pending_then_firing_after_for_then_resolved() -> None:
    down = [Active("AgentDown", (("agent", "a"),), 0.0)]
    key = "AgentDown{agent=a}"
    assert [c.state for c in step(RULES, down, {}, T0)] == [PENDING]
    pending = {key: Known(PENDING, T0)}
    assert step(RULES, down, pending, T0 + timedelta(minutes=5)) == []
    assert [c.state for c in step(RULES, down, pending, T0 + timedelta(minutes=10))] == [FIRING]
    firing = {key: Known(FIRING, T0 + timedelta(minutes=10))}
    assert step(RULES, down, firing, T0 + timedelta(minutes=15)) == []
    assert [c.state for c in step(RULES, [], firing, T0 + timedelta(minutes=20))] == [RESOLVED]
    # A blip shorter than `for:` is cleared without anyone hearing of it.
    assert [c.state for c in step(RULES, [], pending, T0 + timedelta(minutes=5))] == [CLEARED]


def test_a_rule_without_for_fires_at_once() -> None:
    paged = [Active("RepairPaged", (("agent", "p"), ("kind", "paged")), 1.0)]
    assert [c.state for c in step(RULES, paged, {}, T0)] == [FIRING]


def _decide(active, known, told, sent=None, limit=10, now=T0):
    return decide(RULES, active, known, told, sent or {}, limit, now)


def test_one_notification_per_start_and_one_per_end_not_per_run() -> None:
    paged = [Active("RepairPaged", (("agent", "p"), ("kind", "paged")), 1.0)]
    key = "RepairPaged{agent=p,kind=paged}"
    first = _decide(paged, {}, {"email": {}})
    [message] = first.messages["email"]
    assert (message.notices[0].status, message.notices[0].key) == (FIRING, key)
    assert "Automatic repair gave up on p" in message.subject
    # Told once: the next runs (the alert still firing) send nothing.
    again = _decide(paged, {key: Known(FIRING, T0)}, {"email": {key: FIRING}})
    assert again.messages["email"] == [] and again.changes == []
    # It ends: one resolved notice, and then nothing more.
    ended = _decide([], {key: Known(FIRING, T0)}, {"email": {key: FIRING}})
    assert [n.status for m in ended.messages["email"] for n in m.notices] == [RESOLVED]
    quiet = _decide([], {}, {"email": {key: RESOLVED}})
    assert quiet.messages["email"] == []


def test_each_channel_catches_up_on_its_own() -> None:
    key = "RepairPaged{agent=p,kind=paged}"
    paged = [Active("RepairPaged", (("agent", "p"), ("kind", "paged")), 1.0)]
    plan = _decide(paged, {key: Known(FIRING, T0)}, {"email": {key: FIRING}, "webhook": {}})
    assert plan.messages["email"] == [] and len(plan.messages["webhook"]) == 1


def _notices(n: int) -> list[Notice]:
    return [Notice(f"AgentDown{{agent=a{i}}}", "AgentDown", FIRING, "page", f"a{i} down")
            for i in range(n)]  # fmt: skip


def test_rate_limit_sends_what_fits_and_summarises_the_rest_in_one_message() -> None:
    messages = plan_messages(_notices(7), sent_in_window=2, limit=5)
    assert [len(m.notices) for m in messages] == [1, 1, 5]
    assert [m.summary for m in messages] == [False, False, True]
    assert "5 alerts started, 0 ended" in messages[-1].subject
    assert all(f"a{i}" in messages[-1].text for i in range(2, 7))
    assert plan_messages(_notices(3), sent_in_window=5, limit=5) == []  # waits for room
    assert [len(m.notices) for m in plan_messages(_notices(3), 0, 5)] == [1, 1, 1]


def test_a_full_window_holds_the_notices_for_a_later_run() -> None:
    paged = [Active("RepairPaged", (("agent", "p"), ("kind", "paged")), 1.0)]
    plan = _decide(paged, {}, {"email": {}}, sent={"email": 3}, limit=3)
    assert plan.messages["email"] == [] and plan.held == {"email": 1}
    # The alert's state still moves on: a later run with room sends it.
    assert [c.state for c in plan.changes] == [FIRING]
