"""`fatctl image` as a real process: bad input and missing settings are one line each, and
nothing is created at Hetzner before they are checked."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.engines.test_infra_cli import fatctl, one_line


def test_bad_version_is_bad_input(env: dict[str, str], quick_emulator: Any) -> None:
    proc = fatctl(env, "image", "build", "--version", "latest; rm -rf /")
    one_line(proc, 2, "runtime version")
    assert quick_emulator.stats()["total"] == 0


def test_missing_operator_key_is_one_line(env: dict[str, str], quick_emulator: Any) -> None:
    proc = fatctl(env, "image", "build", "--version", "2026.9.6", "--json")
    one_line(proc, 2, "FATCTL_OPERATOR_KEY_FILE")
    assert json.loads(proc.stdout)["error"]["kind"] == "config"  # --json: the error as JSON too
    assert quick_emulator.stats()["total"] == 0


def test_unknown_base_image_is_bad_input(
    env: dict[str, str],
    quick_emulator: Any,
    tmp_path: Any,
) -> None:
    from fatctl.services.agents.material import generate_host_key

    key = tmp_path / "op"
    key.write_text(generate_host_key("op").private.reveal())
    key.chmod(0o600)
    proc = fatctl({**env, "FATCTL_OPERATOR_KEY_FILE": str(key)}, "image", "build",
                  "--version", "2026.9.6", "--base", "windows-11")  # fmt: skip
    one_line(proc, 2, "base image 'windows-11' is not one of")
    assert quick_emulator.stats()["total"] == 0


def test_list_is_empty_json_without_images(env: dict[str, str]) -> None:
    import json

    proc = fatctl(env, "image", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"images": [], "marked_gone": []}
