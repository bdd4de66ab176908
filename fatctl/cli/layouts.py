"""The box layouts the settings describe: they live in `services.common.layouts` (the API's
rollouts need them too); the CLI's modules keep importing them from here."""

from __future__ import annotations

from fatctl.services.common.layouts import box_layout, files_layout

__all__ = ["box_layout", "files_layout"]
