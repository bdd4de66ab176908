"""The emulators' `hold` knob that the crash harness relies on: the Nth matching mutating
request is applied, the marker touched, the answer never sent; other requests go through."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests


def test_hold_applies_then_keeps_the_answer(tmp_path: Path, hetzner_emulator: Any) -> None:
    marker = tmp_path / "held"
    hetzner_emulator.set_faults(hold_match="^POST /v1/firewalls$", hold_nth=2,
                                hold_marker=str(marker), hold_seconds=2.0)  # fmt: skip
    auth = {"Authorization": f"Bearer {hetzner_emulator.token}"}
    url = f"{hetzner_emulator.url}/firewalls"

    def create(name: str) -> requests.Response:
        return requests.post(url, json={"name": name}, headers=auth, timeout=10)

    assert create("first").status_code == 201  # the first match passes
    assert not marker.exists()
    failed: list[BaseException] = []
    t = threading.Thread(target=lambda: _expect_drop(create, failed))
    t.start()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), "the held request never touched the marker"
    # Applied before the answer: the key is already there while the client still waits.
    names = {k["name"] for k in hetzner_emulator.inventory()["firewalls"]}
    assert names == {"first", "second"}
    assert requests.get(url, headers=auth, timeout=10).status_code == 200  # reads flow on
    t.join(15)
    assert failed and isinstance(failed[0], requests.ConnectionError), failed
    assert hetzner_emulator.stats()["events"].get("injected_hold") == 1
    assert create("third").status_code == 201  # only the Nth match is held


def _expect_drop(create: Any, failed: list[BaseException]) -> None:
    try:
        create("second")
    except requests.RequestException as exc:
        failed.append(exc)


def test_hold_knobs_are_checked(hetzner_emulator: Any) -> None:
    with pytest.raises(ValueError, match="regex"):
        hetzner_emulator.set_faults(hold_match="(")
    with pytest.raises(ValueError, match="hold_nth"):
        hetzner_emulator.set_faults(hold_match="POST", hold_nth=0)
