"""The box layout the settings describe: cloud-init's own, with the `box_*` overrides
(FATCTL_BOX_* / `[box]` in fatctl.toml, see fatctl.config.BOX_LAYOUT) applied.

`box_layout` is where the runtime lives and how the gateway is driven (`upgrade`, `apply`'s and
`reconcile`'s health command); `files_layout` is where `converge` writes the rendered files.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fatctl.remote.commands.converge import ConvergeLayout
from fatctl.remote.commands.upgrade import BoxLayout

if TYPE_CHECKING:
    from fatctl.config import Settings

# Settings attribute -> layout field, for text values and for 0/1 switches.
_BOX_TEXT = {"box_root": "root", "box_install": "install", "box_test_boot": "test_boot",
             "box_restart": "restart", "box_health": "health", "box_started": "started",
             "box_lock": "lock"}  # fmt: skip
_FILES_TEXT = {"box_fs_root": "root", "box_converge_state": "state",
               "box_daemon_reload": "daemon_reload", "box_service": "service"}  # fmt: skip
_BOX_SWITCHES = {"box_sudo": "sudo"}
_FILES_SWITCHES = {"box_owners": "owners", "box_sudo": "sudo"}


def _overrides(
    settings: Settings, text: dict[str, str], switches: dict[str, str]
) -> dict[str, Any]:
    """The layout fields the settings set: "" keeps the default, a switch counts only as 0/1."""
    changes: dict[str, Any] = {
        field: getattr(settings, attr) for attr, field in text.items() if getattr(settings, attr)
    }
    for attr, field in switches.items():
        if getattr(settings, attr) in ("0", "1"):
            changes[field] = getattr(settings, attr) == "1"
    return changes


def box_layout(settings: Settings) -> BoxLayout:
    return replace(BoxLayout(), **_overrides(settings, _BOX_TEXT, _BOX_SWITCHES))


def files_layout(settings: Settings) -> ConvergeLayout:
    return replace(ConvergeLayout(), **_overrides(settings, _FILES_TEXT, _FILES_SWITCHES))
