"""Fixtures of the crash harness: a `lab` (control plane + API emulators) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import Lab, make_lab


@pytest.fixture
def lab(tmp_path: Path, hetzner_emulator: Any, cloudflare_emulator: Any) -> Iterator[Lab]:
    made = make_lab(tmp_path, hetzner_emulator, cloudflare_emulator)
    yield made
    made.db.dispose()
