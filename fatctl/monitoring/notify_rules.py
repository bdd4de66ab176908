"""Which alerts start and end, and what to send about them: the pure half of `fatctl serve`'s
own notifications (issue 20), for operators who run no Prometheus.

One definition of every alert: the shipped rules file (`rules/fatctl.rules.yml`). The rules
named in `NOTIFIED` are read from it (expression, `for:`, severity, summary), and each
expression must have one of the simple shapes below, so a threshold changed there changes what
the notifier fires on too; a shape the notifier cannot read is refused when the rules load (a
unit test loads them), never guessed at:

    METRIC OP N                  fatctl_probe_up == 0
    time() - METRIC OP N         time() - fatctl_backup_last_timestamp_seconds > 86400
    METRIC - time() OP N         fatctl_r2_credentials_expiry_timestamp_seconds - time() < 86400
    increase(METRIC[W]) OP N     increase(fatctl_workflows_failed_total[15m]) > 0

METRIC may carry `{label="value"}` matchers; N is a number or a product (`512 * 1024 * 1024`).
The samples are the ones `/metrics` serves (the fleet collector over the state database), so
the notifier and a Prometheus scraping fatctl judge the same series.

The state machine is Prometheus's: an alert whose condition holds is `pending`, `firing` once
it has held for the rule's `for:`, and gone when the condition stops (a pending one silently, a
firing one `resolved`). Each channel then catches up with the firing set: a firing alert it has
not been told of is due, and so is the end of one it was told of. Rate limit: at most `limit`
messages per window per channel; when more are due than the window has room for, the last
message summarises the rest, and what does not fit waits for the next run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from fatctl.monitoring.rules import RULES_FILE

# The rules the notifier evaluates: the agents' and storage's, the repair page and failed
# workflows. Budget and scrape-health alerts are about Prometheus's view and stay there.
NOTIFIED = (
    "AgentDown",
    "BackupStale",
    "R2CredentialsExpiring",
    "RepairPaged",
    "WorkflowsFailing",
    "ChannelDisconnected",
    "BoxDiskLow",
    "BoxMemoryLow",
    "GatewayRestarting",
)

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"
_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_SELECTOR = r"(?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<matchers>[^}]*)\})?"
_EXPR = re.compile(
    r"^(?:(?P<time_minus>time\(\)\s*-\s*)" + _SELECTOR.replace("?P<", "?P<a_")
    + r"|" + _SELECTOR.replace("?P<", "?P<b_") + r"(?P<minus_time>\s*-\s*time\(\))?"
    + r"|increase\(" + _SELECTOR.replace("?P<", "?P<c_") + r"\[(?P<window>\w+)\]\))"
    + r"\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<rhs>[\d.\s*]+)$"
)  # fmt: skip
_MATCHER = re.compile(r'^\s*(\w+)\s*=\s*"([^"]*)"\s*$')
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TEMPLATE = re.compile(r"\{\{\s*(\$labels\.(\w+)|\$value)[^}]*\}\}")


class RuleShapeError(ValueError):
    """A notified rule's expression is not one of the shapes the notifier reads."""


def seconds(duration: str) -> float:
    """A Prometheus duration (`10m`, `1h30m`) in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration.strip():
        raise RuleShapeError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNIT_S[u] for n, u in parts)


def _number(text: str) -> float:
    value = 1.0
    for factor in text.split("*"):
        value *= float(factor.strip())
    return value


@dataclass(frozen=True)
class Rule:
    """One alert as the rules file defines it, in the shape the notifier evaluates."""

    name: str
    metric: str
    matchers: tuple[tuple[str, str], ...]
    form: str  # value, age (time() - M), left (M - time()), increase
    op: str
    threshold: float
    for_s: float = 0.0
    window_s: float = 0.0  # increase's range
    severity: str = "ticket"
    summary: str = ""

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.threshold))


def parse_rule(doc: Mapping[str, object]) -> Rule:
    name, expr = str(doc.get("alert", "")), " ".join(str(doc.get("expr", "")).split())
    found = _EXPR.match(expr)
    if not found:
        raise RuleShapeError(f"{name}: the notifier cannot read {expr!r}")
    g = found.groupdict()
    prefix = "a_" if g["a_metric"] else "b_" if g["b_metric"] else "c_"
    form = ("age" if g["time_minus"] else "left" if g["minus_time"]
            else "increase" if prefix == "c_" else "value")  # fmt: skip
    matchers = []
    for part in filter(None, (g[prefix + "matchers"] or "").split(",")):
        pair = _MATCHER.match(part)
        if not pair:
            raise RuleShapeError(f'{name}: only label="value" matchers are read: {part!r}')
        matchers.append((pair[1], pair[2]))
    labels = doc.get("labels")
    notes = doc.get("annotations")
    severity = labels.get("severity", "ticket") if isinstance(labels, Mapping) else "ticket"
    summary = notes.get("summary", name) if isinstance(notes, Mapping) else name
    return Rule(
        name=name, metric=g[prefix + "metric"], matchers=tuple(matchers), form=form,
        op=g["op"], threshold=_number(g["rhs"]), for_s=seconds(str(doc.get("for", "0s"))),
        window_s=seconds(g["window"]) if g["window"] else 0.0,
        severity=str(severity),
        summary=str(summary),
    )  # fmt: skip


def load_rules(text: str | None = None, names: Sequence[str] = NOTIFIED) -> dict[str, Rule]:
    """The notified rules from the rules file (or `text`); a missing one is an error too."""
    doc = yaml.safe_load(text if text is not None else Path(RULES_FILE).read_text())
    found = {str(r.get("alert")): r for g in doc.get("groups", []) for r in g.get("rules", [])}
    missing = [n for n in names if n not in found]
    if missing:
        raise RuleShapeError(f"not in the rules file: {', '.join(missing)}")
    return {n: parse_rule(found[n]) for n in names}


# --- evaluation ------------------------------------------------------------------------------

Labels = tuple[tuple[str, str], ...]
Samples = Mapping[str, Sequence[tuple[Mapping[str, str], float]]]


@dataclass(frozen=True)
class Active:
    """A rule's condition holding for one series now."""

    rule: str
    labels: Labels
    value: float

    @property
    def key(self) -> str:
        return alert_key(self.rule, self.labels)


def alert_key(rule: str, labels: Labels) -> str:
    inner = ",".join(f"{k}={v}" for k, v in labels)
    return f"{rule}{{{inner}}}" if inner else rule


def evaluate(rules: Iterable[Rule], samples: Samples, now: datetime,
             increases: Mapping[str, float] | None = None) -> list[Active]:  # fmt: skip
    """The series whose condition holds at `now`. `increases` gives an `increase(M[W])` rule's
    value by rule name (the I/O side measures it; a missing one does not hold)."""
    at = now.timestamp()
    active = []
    for rule in rules:
        if rule.form == "increase":
            value = (increases or {}).get(rule.name)
            if value is not None and rule.holds(value):
                active.append(Active(rule.name, (), value))
            continue
        for labels, raw in samples.get(rule.metric, ()):
            if any(labels.get(k) != v for k, v in rule.matchers):
                continue
            value = at - raw if rule.form == "age" else raw - at if rule.form == "left" else raw
            if rule.holds(value):
                active.append(Active(rule.name, tuple(sorted(labels.items())), raw))
    return active


# --- the alert state machine -------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """An alert's stored state: pending or firing, since when."""

    state: str
    since: datetime


@dataclass(frozen=True)
class Change:
    """An alert entering a state: pending, firing, resolved, or `cleared` (a pending one whose
    condition stopped before its `for:`: nobody hears of it)."""

    key: str
    rule: str
    state: str
    value: float | None = None


CLEARED = "cleared"


def rule_of(key: str) -> str:
    return key.split("{", 1)[0]


def step(rules: Mapping[str, Rule], active: Sequence[Active], known: Mapping[str, Known],
         now: datetime) -> list[Change]:  # fmt: skip
    """The state changes `active` brings to `known` at `now` (Prometheus's pending/firing)."""
    changes = []
    by_key = {a.key: a for a in active}
    for key, a in sorted(by_key.items()):
        was = known.get(key)
        wait = timedelta(seconds=rules[a.rule].for_s)
        if was is None:
            changes.append(Change(key, a.rule, FIRING if not wait else PENDING, a.value))
        elif was.state == PENDING and now - was.since >= wait:
            changes.append(Change(key, a.rule, FIRING, a.value))
    for key, was in sorted(known.items()):
        if key not in by_key and rule_of(key) in rules:
            changes.append(Change(key, rule_of(key), RESOLVED if was.state == FIRING else CLEARED))
    return changes


def after(known: Mapping[str, Known], changes: Iterable[Change], now: datetime) -> dict[str, Known]:
    """The stored states once `changes` are applied."""
    states = dict(known)
    for c in changes:
        if c.state in (PENDING, FIRING):
            states[c.key] = Known(c.state, now)
        else:
            states.pop(c.key, None)
    return states


# --- what each channel is told ----------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One alert's start or end, as a channel hears of it."""

    key: str
    rule: str
    status: str  # firing | resolved
    severity: str
    summary: str
    since: datetime | None = None


@dataclass(frozen=True)
class Message:
    """What one send carries: one notice, or (`summary`) the overflow of a full window."""

    notices: tuple[Notice, ...]
    summary: bool = False

    @property
    def subject(self) -> str:
        if not self.summary:
            n = self.notices[0]
            return f"[{n.status.upper()}:{n.severity}] {n.summary}"
        firing = sum(1 for n in self.notices if n.status == FIRING)
        return (f"[fatctl] {firing} alerts started, {len(self.notices) - firing} ended "
                "(notification limit reached)")  # fmt: skip

    @property
    def text(self) -> str:
        if not self.summary:
            n = self.notices[0]
            since = f" (since {n.since:%Y-%m-%d %H:%M} UTC)" if n.since else ""
            return f"{self.subject}\nalert: {n.key}{since}"
        listed = (f"- {n.status}: {n.key}: {n.summary}" for n in self.notices)
        return "\n".join([self.subject, "", *listed])


def summary_text(rule: Rule, labels: Labels, value: float | None) -> str:
    """The rule's summary annotation with `{{ $labels.x }}` and `{{ $value }}` filled in."""
    named = dict(labels)

    def fill(m: re.Match[str]) -> str:
        if m[2]:
            return named.get(m[2], "")
        return "" if value is None else f"{value:g}"

    return _TEMPLATE.sub(fill, rule.summary)


def labels_of(key: str) -> Labels:
    inner = key.partition("{")[2].rstrip("}")
    return tuple(tuple(p.split("=", 1)) for p in inner.split(",") if "=" in p)  # type: ignore[misc]


def due(rules: Mapping[str, Rule], firing: Mapping[str, Known], told: Mapping[str, str],
        values: Mapping[str, float] | None = None) -> list[Notice]:  # fmt: skip
    """What a channel has not heard yet: each firing alert it was not told of, and the end of
    each it was told of that fires no more. Pages first, then the rest; ends last."""
    notices = []
    for key, was in sorted(firing.items()):
        if was.state == FIRING and told.get(key) != FIRING and rule_of(key) in rules:
            rule = rules[rule_of(key)]
            notices.append(Notice(key, rule.name, FIRING, rule.severity,
                                  summary_text(rule, labels_of(key), (values or {}).get(key)),
                                  was.since))  # fmt: skip
    for key, said in sorted(told.items()):
        live = firing.get(key)
        if said == FIRING and (live is None or live.state != FIRING) and rule_of(key) in rules:
            rule = rules[rule_of(key)]
            notices.append(Notice(key, rule.name, RESOLVED, rule.severity,
                                  summary_text(rule, labels_of(key), None)))  # fmt: skip
    order = {(FIRING, "page"): 0, (FIRING, "ticket"): 1}
    return sorted(notices, key=lambda n: (order.get((n.status, n.severity), 2), n.key))


def plan_messages(notices: Sequence[Notice], sent_in_window: int, limit: int) -> list[Message]:
    """At most `limit - sent_in_window` messages: one per notice while they fit; when they do
    not, the last one summarises every notice left (so no start or end is lost, only bundled)."""
    room = max(0, limit - sent_in_window)
    if room == 0 or not notices:
        return []
    if len(notices) <= room:
        return [Message((n,)) for n in notices]
    singles = [Message((n,)) for n in notices[: room - 1]]
    return [*singles, Message(tuple(notices[room - 1 :]), summary=True)]


@dataclass(frozen=True)
class Plan:
    """One run's decisions: the state changes, and per channel the messages to send."""

    changes: list[Change]
    messages: dict[str, list[Message]] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # notices waiting for a window's room


def decide(rules: Mapping[str, Rule], active: Sequence[Active], known: Mapping[str, Known],
           told: Mapping[str, Mapping[str, str]], sent: Mapping[str, int], limit: int,
           now: datetime) -> Plan:  # fmt: skip
    """Everything one run does, decided from what it read: `known` the stored alert states,
    `told[channel]` what each channel last heard per alert, `sent[channel]` its messages in
    the current window."""
    changes = step(rules, active, known, now)
    states = after(known, changes, now)
    values = {a.key: a.value for a in active}
    plan = Plan(changes)
    for channel, heard in told.items():
        notices = due(rules, states, heard, values)
        plan.messages[channel] = plan_messages(notices, sent.get(channel, 0), limit)
        carried = sum(len(m.notices) for m in plan.messages[channel])
        if carried < len(notices):
            plan.held[channel] = len(notices) - carried
    return plan
