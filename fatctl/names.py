"""Friendly unique agent names in the style `swiftpebble`, `calmflint`.

An adjective and a noun, both short, joined without a separator so the result is a valid DNS
label; a numeric suffix is added only when the word space near the pick is taken.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fatctl.validation import RESERVED_NAMES

ADJECTIVES = (
    "swift", "calm", "bright", "bold", "brave", "clever", "crisp", "eager", "fair", "gentle",
    "glad", "keen", "kind", "lucid", "merry", "noble", "quick", "quiet", "rapid", "sharp",
    "shy", "sly", "smart", "snug", "solid", "steady", "sunny", "tidy", "vivid", "warm",
    "wise", "witty", "amber", "azure", "coral", "golden", "silver", "misty", "lunar", "polar",
)  # fmt: skip
NOUNS = (
    "pebble", "flint", "river", "harbor", "meadow", "falcon", "otter", "maple", "cedar", "comet",
    "ember", "fjord", "grove", "heron", "island", "juniper", "lantern", "marble", "nectar", "orbit",
    "prairie", "quartz", "raven", "summit", "thicket", "tundra", "valley", "willow", "zephyr",
    "beacon", "canyon", "delta", "glacier", "hollow", "kestrel", "lagoon", "mesa", "nova",
    "aspen", "birch",
)  # fmt: skip


def friendly_name(
    taken: Callable[[str], bool], rand: Callable[[int], int] = secrets.randbelow
) -> str:
    """Pick a free name; `taken(name)` says whether a candidate is in use."""
    for _ in range(64):
        name = ADJECTIVES[rand(len(ADJECTIVES))] + NOUNS[rand(len(NOUNS))]
        if name not in RESERVED_NAMES and not taken(name):
            return name
    # The plain word space is crowded: add a short number, still within 40 characters.
    while True:
        name = ADJECTIVES[rand(len(ADJECTIVES))] + NOUNS[rand(len(NOUNS))] + str(rand(10_000))
        if not taken(name):
            return name
