"""Rendering of a box's user-data and files: pure functions of an `AgentSpec`.

`render_files` is every file the box gets (the converge flow re-applies it over SSH);
`render_user_data` wraps those files into the `#cloud-config` Hetzner passes at creation;
`render_install_script` is the one Node + OpenClaw install script, shared with the image builders.
"""

from __future__ import annotations

from cloud_init.environment import TEMPLATE_PACKAGE, TemplateSource, render
from cloud_init.files import RenderedFile, in_user_data, render_files, template_context
from cloud_init.inputs import host_key_kinds
from cloud_init.install_script import render_install_script
from cloud_init.packages import packages_for_image
from fatctl.domain import AgentSpec
from fatctl.errors import BadInput

__all__ = ["MAX_USER_DATA", "RenderedFile", "render_files", "render_install_script"]
__all__ += ["render_user_data"]

MAX_USER_DATA = 32 * 1024  # Hetzner's limit on user_data, in bytes


def render_user_data(spec: AgentSpec, templates: TemplateSource = TEMPLATE_PACKAGE) -> str:
    """The `#cloud-config` document for a new box; BadInput when it exceeds Hetzner's 32 KiB.

    Holds no secret except the SSH host private keys (cloud-init must install them so the host
    key is known before the box exists); callers treat the whole text as a secret.
    """
    files = render_files(spec, templates)
    text = render(
        "cloud-config.yaml.j2",
        templates,
        **template_context(spec),
        host_keys=host_key_kinds(spec.host_keys),
        packages=packages_for_image(spec.image),
        files=sorted((f for f in files.values() if in_user_data(f.path)), key=lambda f: f.path),
    )
    size = len(text.encode("utf-8"))
    if size > MAX_USER_DATA:
        raise BadInput(f"user-data for {spec.name} is {size} bytes, over the {MAX_USER_DATA} limit")
    return text
