"""The health gate every rollout step must pass: the box's own `fat-health --json`, then HTTPS.

`fat-health` must report healthy twice in a row within the timeout (one pass can catch a gateway
that is still crashing on start). Then HTTPS on `<agent>.<domain>` must answer below 500 through
Caddy, but only where that name resolves: on a box without a resolvable name (a test host, a
fleet without a domain) the HTTPS part is skipped and the reason kept in `notes`, so the step's
record says what was not checked. Remote calls that cannot reach the box raise `Unreachable`;
commands that fail raise `StepFailed` (both shared with the per-host workers).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fatctl.pacing.poll import Poll
from fatctl.remote.commands.staged import parse, then_if_ok
from fatctl.remote.fanout import run_one
from fatctl.remote.runner import Pool, Result
from fatctl.remote.target import Target
from fatctl.services.common.https_probe import https_problem

STEP_TIMEOUT_S = 60.0
RESOLVE_TIMEOUT_S = 5.0


class Unreachable(Exception):
    """The box did not answer over SSH."""


class StepFailed(Exception):
    """A remote command ran and failed."""


def run_checked(
    pool: Pool,
    target: Target,
    command: str,
    what: str,
    timeout: float = STEP_TIMEOUT_S,
    stdin: bytes | None = None,
) -> Result:
    """Run one remote command; unreachable and non-zero exits become the two exceptions."""
    return checked(run_one(pool, target, command, timeout=timeout, stdin=stdin), what)


def checked(result: Result, what: str) -> Result:
    """`result`, or `Unreachable` / `StepFailed` (with stderr's last line) named by `what`."""
    if result.error is not None:
        raise Unreachable(f"{what}: {result.error}")
    if result.exit_code != 0:
        last = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exit_code}"]
        raise StepFailed(f"{what} failed: {last[0][:200]}")
    return result


def judge_health(
    exit_code: int | None, stdout: str, stderr: str, version: str | None
) -> str | None:
    """None when `fat-health --json` said healthy (on `version`, when one is expected), else why
    not: its `problems`, or its stderr when it printed no report."""
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {}
    if not isinstance(report, dict):
        report = {}
    if exit_code != 0 or report.get("healthy") is False:
        problems = report.get("problems") or [stderr.strip()[-200:] or "unhealthy"]
        return "; ".join(str(p) for p in problems)
    running = report.get("runtime_version")
    if version and running and running != version:
        return f"box reports runtime {running}, expected {version}"
    return None


def resolves(name: str, timeout: float = RESOLVE_TIMEOUT_S) -> bool:
    """Whether `name` has an address, without letting a slow resolver hold the gate."""
    found: list[bool] = []

    def look() -> None:
        try:
            found.append(bool(socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)))
        except (OSError, UnicodeError):
            found.append(False)

    worker = threading.Thread(target=look, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(found and found[0])


def https_answer(fqdn: str) -> str | None:
    """None when HTTPS on `fqdn` answers below 500 with a valid certificate, else why not (the
    provisioning gate's one-line reasons: an HTTP-level failure no longer escapes the gate)."""
    status, problem = https_problem(fqdn, fqdn, timeout=10.0)
    if status is None:
        return f"HTTPS on {fqdn}: {problem}"
    return None if status < 500 else f"HTTPS on {fqdn} answered {status}"


@dataclass
class Gate:
    """The gate for one host; `poll` (its pause, sleep and clock), `resolve` and `https`
    injectable for tests."""

    pool: Pool
    health_command: str
    timeout_s: float
    domain: str = ""
    poll: Poll = field(default_factory=Poll)
    resolve: Callable[[str], bool] = resolves
    https: Callable[[str], str | None] = https_answer
    notes: list[str] = field(default_factory=list)
    after_output: str | None = None  # what `after` printed, once it ran

    def healthy_once(
        self, target: Target, version: str | None, after: tuple[str, str] | None = None
    ) -> str | None:
        """None when healthy (on `version`, when one is expected), else why not. `after`
        (name, command) runs in the same session once `fat-health` exits 0; its output is kept
        in `after_output`."""
        command = self.health_command
        if after is not None:
            command = then_if_ok(command, *after)
        result = run_one(self.pool, target, command, timeout=STEP_TIMEOUT_S)
        if result.error is not None:
            raise Unreachable(f"health: {result.error}")
        if after is None:
            return judge_health(result.exit_code, result.stdout, result.stderr, version)
        printed = parse(result.stdout)
        if after[0] in printed.started:
            self.after_output = printed.of(after[0])
        return judge_health(result.exit_code, printed.before, result.stderr, version)

    def wait(
        self, target: Target, version: str | None = None, after: tuple[str, str] | None = None
    ) -> str | None:
        """Healthy twice in a row, then HTTPS where the name resolves; None when passed.

        `after` (name, command) rides along with the pass that would be the second healthy one
        in a row, running only if that pass's `fat-health` exits 0: a follow-up command (the
        prune) without a session of its own."""
        deadline = self.poll.deadline(self.timeout_s)
        passes, why = 0, "no health check ran"
        while not self.poll.expired(deadline):
            why_now = self.healthy_once(target, version, after if passes == 1 else None)
            passes = passes + 1 if why_now is None else 0
            if passes >= 2:
                return self._https(target, deadline)
            why = why_now or why
            self.poll.pause()
        return f"health gate failed within {self.timeout_s:g}s: {why}"

    def _https(self, target: Target, deadline: float) -> str | None:
        if not self.domain:
            self._note("https not checked: no domain configured")
            return None
        fqdn = f"{target.name}.{self.domain}"
        if not self.resolve(fqdn):
            self._note(f"https not checked: {fqdn} does not resolve")
            return None
        why = self.https(fqdn)
        while why is not None and not self.poll.expired(deadline):
            self.poll.pause()
            why = self.https(fqdn)
        return None if why is None else f"health gate failed: {why}"

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
