"""Several commands in one SSH session, each announced by a marker line, and the parse of that.

Every session costs a channel, a forked shell and a round trip (50-90 ms each on this loaded
host, measured by bench/rollout.py). Two shapes: `in_order` runs stages that must all succeed
(the activation: install, test boot, switch, restart), ending at the first failure, whose name
is then the last marker printed; `then_if_ok` lets a follow-up that needs only the first
command's success (the prune after the health gate's last pass) ride along, its failure printed
rather than returned. Each command runs in its own subshell (its `set -e` or `cd` does not
leak), and the parser splits the output at the markers.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

MARK = "::fatctl-stage "


def _announce(name: str) -> str:
    # The leading newline puts the marker at a line start even after output without one.
    return f"printf '\\n%s\\n' {shlex.quote(MARK + name)}"


def then_if_ok(first: str, name: str, then: str) -> str:
    """`first`; only when it exits 0, announce `name` and run `then`, best effort (its failure
    is printed, not returned: the status is `first`'s)."""
    return (
        f'( {first}\n) || exit $?\n{_announce(name)}\n( {then}\n) || echo "{name} failed: exit $?"'
    )


def in_order(*stages: tuple[str, str]) -> str:
    """Each (name, command) announced, then run in its own subshell; the first that fails ends
    the script with its status, so the last announced name is the stage that failed."""
    lines: list[str] = []
    for name, command in stages:
        lines += [_announce(name), f"( {command}\n) || exit $?"]
    return "\n".join(lines)


@dataclass(frozen=True)
class Stages:
    """What the session printed: the announced follow-ups that started, in order, each one's
    stdout, and what came before them (the first command's own output)."""

    started: tuple[str, ...]
    output: dict[str, str]
    before: str

    def of(self, name: str) -> str:
        return self.output.get(name, "")


def parse(stdout: str) -> Stages:
    """Split stdout at the marker lines (the newline each marker adds before itself removed)."""
    started: list[str] = []
    chunks: dict[str, list[str]] = {}
    before: list[str] = []
    into = before
    for line in stdout.split("\n"):
        if line.startswith(MARK):
            if into and into[-1] == "":
                into.pop()
            name = line[len(MARK) :]
            started.append(name)
            into = chunks.setdefault(name, [])
            continue
        into.append(line)
    output = {name: "\n".join(lines) for name, lines in chunks.items()}
    return Stages(tuple(started), output, "\n".join(before))
