"""Test-suite wide configuration: shared fixture modules and the root/PostgreSQL skip rules."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.emulators",
    "tests.fixtures.sshd",
    "tests.fixtures.boxes",
    "tests.fixtures.figures",
    "tests.fixtures.termination",
]
