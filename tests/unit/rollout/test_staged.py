"""A follow-up riding in the session of a first command, run by a real /bin/sh: it runs only
after success, never changes the status, does not leak shell state, and parses apart."""

from __future__ import annotations

import subprocess

from fatctl.remote.commands.staged import MARK, parse, then_if_ok


def sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def test_then_runs_only_after_success_and_never_changes_the_status() -> None:
    ok = sh(then_if_ok("echo healthy", "prune", "echo pruned 1.0"))
    assert ok.returncode == 0
    printed = parse(ok.stdout)
    assert printed.before.strip() == "healthy" and printed.of("prune") == "pruned 1.0\n"

    failed_first = sh(then_if_ok("echo sick; exit 4", "prune", "echo pruned 1.0"))
    assert failed_first.returncode == 4 and parse(failed_first.stdout).started == ()

    failed_then = sh(then_if_ok("true", "prune", "exit 7"))
    assert failed_then.returncode == 0
    assert parse(failed_then.stdout).of("prune").strip() == "prune failed: exit 7"


def test_the_follow_up_starts_afresh_and_its_output_is_its_own() -> None:
    # `set -eu` and `cd` as the upgrade builders use them; and output without a newline.
    done = sh(then_if_ok("set -eu; cd /; printf healthy", "prune", 'echo "${UNSET:-unset}"; pwd'))
    assert done.returncode == 0
    printed = parse(done.stdout)
    assert printed.before == "healthy"
    out = printed.of("prune").splitlines()
    assert out[0] == "unset" and out[1] != "/"


def test_parse_keeps_what_came_before_any_marker_and_copes_with_none() -> None:
    assert parse("banner\n").before == "banner\n" and parse("banner\n").started == ()
    assert parse(f"x\n\n{MARK}s\ny").of("s") == "y"
