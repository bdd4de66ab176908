"""The one Node + OpenClaw install script, shared by the box files (`files.render_files`), the
stock-image first boot and the golden-image builders. A module of its own so that the files it
joins and the user-data that wraps them both import it, and neither imports the other.
"""

from __future__ import annotations

from cloud_init import layout as L
from cloud_init.environment import TEMPLATE_PACKAGE, TemplateSource, render
from cloud_init.inputs import check_version
from cloud_init.packages import (
    NODE_INTEGRITY,
    NODE_PACKAGES,
    NPM_INTEGRITY,
    NPM_VERSION,
    PLUGIN_INTEGRITY,
)
from fatctl.serving import CHANNEL_PLUGINS


def render_install_script(
    runtime_version: str, node_version: str, templates: TemplateSource = TEMPLATE_PACKAGE
) -> str:
    """The bash script installing Node `node_version` (the build for the machine it runs on:
    x86-64 or arm64), OpenClaw `runtime_version` and its channel plugins at the same version.

    Idempotent and chroot-safe; Node's tarball and each plugin are checked against the pinned
    sha512 (or the registry's `dist.integrity` for versions not pinned in `cloud_init.packages`).
    """
    check_version("runtime version", runtime_version)
    check_version("node version", node_version)
    return render(
        "install-runtime.sh.j2",
        templates,
        runtime_version=runtime_version,
        node_version=node_version,
        # (`uname -m`, npm package, pinned integrity or ""): the script picks its machine's.
        node_builds=[
            (machine, package, NODE_INTEGRITY.get((package, node_version), ""))
            for machine, package in sorted(NODE_PACKAGES.items())
        ],
        npm_version=NPM_VERSION,
        npm_integrity=NPM_INTEGRITY,
        plugins=sorted(CHANNEL_PLUGINS.values()),
        plugin_integrity=[
            (i, sri) for (i, v), sri in sorted(PLUGIN_INTEGRITY.items()) if v == runtime_version
        ],
        state_dir=L.STATE_DIR,
        service_uid=L.SERVICE_UID,
        install_uid=L.INSTALL_UID,
    )
