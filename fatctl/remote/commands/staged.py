"""A follow-up command in the same SSH session as a first one, and the parse of what both printed.

Every session costs a channel, a forked shell and a round trip (50-90 ms each on this loaded
host, measured by bench/rollout.py). A follow-up that needs only the first command's success
(the prune after the health gate's last pass) rides along: a marker line announces it on
stdout, it runs in its own subshell (its `set -e` or `cd` does not leak), its failure is
printed rather than returned, and the parser splits the first command's output from its own.
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
