"""Rendering of a box's user-data and files: pure functions of an `AgentSpec`.

`render_files` is every file the box gets (the converge flow re-applies it over SSH);
`render_user_data` wraps those files into the `#cloud-config` Hetzner passes at creation;
`render_install_script` is the one Node + OpenClaw install script, shared with the image builders.
"""

from __future__ import annotations

from cloud_init.environment import TEMPLATE_PACKAGE, TemplateSource, render
from cloud_init.files import RenderedFile, render_files, template_context
from cloud_init.inputs import check_version, host_key_kinds
from cloud_init.packages import NODE_INTEGRITY, NPM_INTEGRITY, NPM_VERSION, packages_for_image
from fatctl.domain import AgentSpec
from fatctl.errors import BadInput

__all__ = ["MAX_USER_DATA", "RenderedFile", "render_files", "render_install_script"]
__all__ += ["render_user_data"]

MAX_USER_DATA = 32 * 1024  # Hetzner's limit on user_data, in bytes


def render_install_script(
    runtime_version: str, node_version: str, templates: TemplateSource = TEMPLATE_PACKAGE
) -> str:
    """The bash script installing Node `node_version` and OpenClaw `runtime_version`.

    Idempotent and chroot-safe; Node's tarball is checked against the pinned sha512 (or the
    registry's `dist.integrity` for versions not pinned in `cloud_init.packages`).
    """
    check_version("runtime version", runtime_version)
    check_version("node version", node_version)
    return render(
        "install-runtime.sh.j2",
        templates,
        runtime_version=runtime_version,
        node_version=node_version,
        node_integrity=NODE_INTEGRITY.get(node_version, ""),
        npm_version=NPM_VERSION,
        npm_integrity=NPM_INTEGRITY,
    )


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
        files=sorted(files.values(), key=lambda f: f.path),
    )
    size = len(text.encode("utf-8"))
    if size > MAX_USER_DATA:
        raise BadInput(f"user-data for {spec.name} is {size} bytes, over the {MAX_USER_DATA} limit")
    return text
